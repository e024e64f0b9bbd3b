"""A wall clock for tests: Unix time that moves only when the test moves it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(text: str) -> float:
    """Unix seconds of an ISO 8601 UTC moment, e.g. ``2026-03-15T23:59:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class FakeWallClock:
    """A callable returning Unix seconds; ``advance`` and ``set`` move it."""

    def __init__(self, start: str = "2026-03-15T12:00:00") -> None:
        self.time = utc(start)

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.time += seconds

    def set(self, moment: str) -> None:
        """Jump to an ISO 8601 UTC moment."""
        self.time = utc(moment)
