"""Time and randomness, injected so resilience logic is tested without sleeping."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time, sleeping and a random source in one injectable value."""

    def now(self) -> float:
        """Monotonic seconds (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...

    def random(self) -> float:
        """A uniform number in [0, 1)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``asyncio.sleep`` and a private RNG."""

    def __init__(self, seed: int | None = None) -> None:
        self._random = random.Random(seed)

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""
        if seconds > 0:
            await asyncio.sleep(seconds)

    def random(self) -> float:
        """A uniform number in [0, 1)."""
        return self._random.random()
