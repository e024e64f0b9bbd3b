"""Wait for a condition the code under test makes true in the background."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], *, within_s: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail if it has not within ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition still false after {within_s}s")
        await asyncio.sleep(0.01)
