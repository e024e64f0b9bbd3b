"""The simulator's capacity limit: a token bucket, as a provider's request rate limiter."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# Float refill can land a hair under a whole token; that request is on time, not early.
_WHOLE_TOKEN_SLACK = 1e-9


class TokenBucket:
    """Admits ``rate`` requests per second on average and up to ``burst`` at once.

    The bucket starts full. Each admitted request takes one token; tokens come
    back at ``rate`` per second up to ``burst``. A refused request takes nothing,
    so clients that retry too early do not push their own turn further away.
    """

    def __init__(
        self, rate: float, burst: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError("rate must be a finite number > 0")
        if not math.isfinite(burst) or burst < 1:
            raise ValueError("burst must be a finite number >= 1")
        self._rate = rate
        self._burst = burst
        self._now = now
        self._tokens = burst
        self._updated = now()

    @property
    def rate(self) -> float:
        """Requests admitted per second, on average."""
        return self._rate

    @property
    def burst(self) -> float:
        """The most requests admitted at once after a quiet spell."""
        return self._burst

    def take(self) -> float | None:
        """None when a request is admitted (a token taken), else seconds until one is."""
        now = self._now()
        # A clock that steps back refills nothing rather than draining the bucket.
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1 - _WHOLE_TOKEN_SLACK:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self._rate
