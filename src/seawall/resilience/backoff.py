"""How long to wait before a retry: capped exponential backoff with full jitter.

A ``Backoff`` is a small frozen value (as tenacity's wait policies are): it holds no
state and draws no randomness itself, so the caller passes the clock's random number
and tests get exact delays.
"""

from __future__ import annotations

from dataclasses import dataclass

# 2.0 ** 1024 overflows a float; past this many doublings the cap has long applied.
_MAX_DOUBLINGS = 1023


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential backoff that honours an upstream's Retry-After."""

    base_seconds: float = 0.25
    cap_seconds: float = 8.0
    retry_after_jitter: float = 0.1  # fraction added on top of an upstream's Retry-After

    def __post_init__(self) -> None:
        if not self.base_seconds > 0:
            raise ValueError(f"backoff base_seconds must be > 0, got {self.base_seconds!r}")
        if not self.cap_seconds > 0:
            raise ValueError(f"backoff cap_seconds must be > 0, got {self.cap_seconds!r}")
        if self.cap_seconds < self.base_seconds:
            raise ValueError(
                f"backoff cap_seconds ({self.cap_seconds!r}) must be >= "
                f"base_seconds ({self.base_seconds!r})"
            )
        if not self.retry_after_jitter >= 0:
            raise ValueError(
                f"backoff retry_after_jitter must be >= 0, got {self.retry_after_jitter!r}"
            )

    def delay(self, retry: int, random: float, retry_after: float | None = None) -> float:
        """Seconds before retry `retry` (1 = first): full jitter, never under the Retry-After."""
        if retry < 1:
            raise ValueError(f"retry numbers start at 1, got {retry!r}")
        if not 0.0 <= random <= 1.0:
            raise ValueError(f"random must be in [0, 1], got {random!r}")
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** min(retry - 1, _MAX_DOUBLINGS))
        # Full jitter (anywhere in [0, ceiling)) spreads retries of clients that failed together.
        jittered = random * ceiling
        if retry_after is None:
            return jittered
        # The upstream's wait is a floor; stretch it a little so everyone told "1 s" does not
        # come back in the same instant.
        floor = max(0.0, retry_after) * (1.0 + self.retry_after_jitter * random)
        return max(jittered, floor)
