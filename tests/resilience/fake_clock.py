"""A clock for tests: time moves only when someone sleeps or the test advances it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class FakeClock:
    """``Clock`` whose sleeps return at once and move time forward by what they asked.

    ``randoms`` is consumed in order by ``random()`` (then repeats its last value), so
    jittered delays are exact in assertions. ``sleeps`` lists every sleep requested.
    """

    def __init__(self, start: float = 1000.0, randoms: Iterable[float] = (0.5,)) -> None:
        self.time = start
        self.sleeps: list[float] = []
        self._randoms = list(randoms) or [0.5]
        self._next = 0

    def now(self) -> float:
        """The fake monotonic time."""
        return self.time

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, advance time, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)

    def random(self) -> float:
        """The next scripted random number."""
        value = self._randoms[min(self._next, len(self._randoms) - 1)]
        self._next += 1
        return value

    def advance(self, seconds: float) -> None:
        """Move time forward without sleeping."""
        self.time += seconds
