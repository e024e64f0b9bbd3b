"""Work that runs after the answer has gone: settlements and outcome reports.

The answer must not wait for bookkeeping that cannot change it (settling a budget,
telling a breaker a call succeeded). Each such coroutine runs as a task of its own
(a cancelled request, a client that left, could not await it), kept here until done
so that shutdown can wait for every one (``drain``) and none is lost. Its Redis
commands go out with the next request's (``redis_multiplex.deferred``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from seawall.stores.redis_multiplex import deferred

logger = logging.getLogger(__name__)


class Background:
    """Runs coroutines off the response path; ``drain`` waits for them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, work: Coroutine[Any, Any, None]) -> None:
        """Start ``work`` now; it finishes on its own, its Redis calls deferred."""
        with deferred():  # the task's context is copied here
            task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # Nobody awaits this work: say what went wrong here, once.
            logger.error("background work failed", exc_info=error)

    async def drain(self) -> None:
        """Wait for the work still running (at shutdown, in tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
