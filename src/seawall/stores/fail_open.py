"""The fail-open policy of Redis-backed stores that keep serving on per-instance state.

A store that fails open (circuit breakers, provider rate budgets) asks its
``FailOpenGuard`` before each Redis call. While Redis answers, the shared state is
used. When a call fails, the guard logs one warning, counts it, and for
``retry_seconds`` tells the store to serve from its in-memory twin instead of paying
a timeout per request; then it lets one call try Redis again. When Redis answers
again, the guard logs the recovery and the store is back on shared state (what the
instance decided alone meanwhile is not merged: shared state resumes where Redis left
it, and expires on its own schedule).

Counters for metrics, read as plain attributes: ``outages`` (times Redis was lost),
``local_calls`` (calls served from memory because Redis was unavailable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a lost or broken Redis raises (MultiplexedRedis raises redis-py's exceptions).
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class FailOpenGuard:
    """Tracks whether one store's Redis is usable, and reports outages once each."""

    def __init__(self, store: str, now: Callable[[], float], retry_seconds: float = 1.0) -> None:
        self.outages = 0
        self.local_calls = 0
        self._store = store
        self._now = now
        self._retry_seconds = retry_seconds
        self._down_until: float | None = None

    @property
    def down(self) -> bool:
        """Whether the last Redis call failed and Redis has not answered since."""
        return self._down_until is not None

    def use_redis(self) -> bool:
        """Whether to try Redis for this call (False: serve it locally)."""
        if self._down_until is None or self._now() >= self._down_until:
            return True
        self.local_calls += 1
        return False

    def failed(self, error: BaseException) -> None:
        """Redis failed this call: serve it locally, and keep off Redis for a while."""
        self.local_calls += 1
        if self._down_until is None:
            self.outages += 1
            logger.warning(
                "%s: Redis unavailable (%s: %s); failing open to per-instance state",
                self._store,
                type(error).__name__,
                error,
            )
        self._down_until = self._now() + self._retry_seconds

    def succeeded(self) -> None:
        """Redis answered: shared state is in use (again)."""
        if self._down_until is not None:
            self._down_until = None
            logger.warning("%s: Redis is back; shared state in use again", self._store)
