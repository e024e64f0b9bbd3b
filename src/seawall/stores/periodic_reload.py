"""Reloading something from the database every few seconds, in the background.

Hot-path views of control-plane tables (budget rules, cache invalidations) are kept
in memory and reloaded every ``interval_s``, so a request never waits for the
database and a change made by any instance or the CLI applies everywhere within
that time, whether or not traffic flows. A failed reload keeps what was loaded
(``failures`` counts it) and is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class PeriodicReload:
    """Calls ``reload`` every ``interval_s`` seconds between ``start`` and ``aclose``."""

    def __init__(
        self,
        what: str,
        reload: Callable[[], Awaitable[None]],
        interval_s: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.failures = 0
        self._what = what
        self._reload = reload
        self._interval_s = interval_s
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reloading (the caller loads once first, so a failure there is seen)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._forever(), name=f"seawall-reload-{self._what}"
            )

    async def aclose(self) -> None:
        """Stop reloading."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _forever(self) -> None:
        while True:
            await self._sleep(self._interval_s)
            try:
                await self._reload()
            except Exception as exc:
                self.failures += 1
                logger.warning(
                    "could not reload %s (%s: %s); keeping what was loaded",
                    self._what,
                    type(exc).__name__,
                    exc,
                )
