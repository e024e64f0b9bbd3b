"""A retry budget per deployment, so retries cannot turn an outage into a traffic storm.

Per-request retry limits do not bound load: when an upstream fails every request, three
retries each turn 1,000 requests into 4,000. Following Finagle's ``RetryBudget``, every
first attempt deposits ``ratio`` of a retry and every retry withdraws one, over a
sliding window. During an outage the upstream therefore sees at most ``1 + ratio``
times the offered traffic, plus a small floor (``min_per_second``) that lets quiet
deployments still retry a transient failure.

The window is a ring of time buckets, so memory per deployment is bounded, and
deployments that go quiet are forgotten once their buckets expire.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from seawall.resilience.clock import Clock

# Time buckets per window: the window slides in steps of a tenth of its length.
_BUCKETS = 10


@dataclass(slots=True)
class _Bucket:
    index: int
    requests: int = 0
    retries: int = 0


@dataclass(slots=True)
class _Window:
    """One deployment's recent buckets, oldest first, with their running totals."""

    buckets: deque[_Bucket] = field(default_factory=deque)
    requests: int = 0
    retries: int = 0

    def expire(self, oldest_live: int) -> None:
        """Drop buckets older than ``oldest_live``."""
        while self.buckets and self.buckets[0].index < oldest_live:
            gone = self.buckets.popleft()
            self.requests -= gone.requests
            self.retries -= gone.retries

    def add(self, index: int, *, requests: int = 0, retries: int = 0) -> None:
        """Count events in the bucket for ``index`` (the newest)."""
        if not self.buckets or self.buckets[-1].index != index:
            self.buckets.append(_Bucket(index))
        bucket = self.buckets[-1]
        bucket.requests += requests
        bucket.retries += retries
        self.requests += requests
        self.retries += retries


class RetryBudget:
    """Allows retries to a deployment up to ``ratio`` of its recent requests plus a floor."""

    def __init__(
        self,
        clock: Clock,
        *,
        ratio: float = 0.2,
        min_per_second: float = 1.0,
        window_seconds: float = 10.0,
    ) -> None:
        if not (ratio >= 0 and math.isfinite(ratio)):
            raise ValueError(f"retry budget ratio must be a finite number >= 0, got {ratio!r}")
        if not (min_per_second >= 0 and math.isfinite(min_per_second)):
            raise ValueError(
                f"retry budget min_per_second must be a finite number >= 0, got {min_per_second!r}"
            )
        if not (window_seconds > 0 and math.isfinite(window_seconds)):
            raise ValueError(
                f"retry budget window_seconds must be a finite number > 0, got {window_seconds!r}"
            )
        self._clock = clock
        self._ratio = ratio
        self._floor = min_per_second * window_seconds
        self._bucket_seconds = window_seconds / _BUCKETS
        self._windows: dict[str, _Window] = {}
        self._next_sweep = clock.now() + window_seconds
        self._granted = 0
        self._refused = 0

    @property
    def granted(self) -> int:
        """Retries allowed since start."""
        return self._granted

    @property
    def refused(self) -> int:
        """Retries refused since start."""
        return self._refused

    @property
    def tracked_deployments(self) -> int:
        """Deployments whose history is kept; idle ones go within two windows (for metrics)."""
        self._sweep(self._bucket_index())
        return len(self._windows)

    def record_request(self, deployment: str) -> None:
        """Note that a first attempt was sent to ``deployment`` (a deposit)."""
        index = self._bucket_index()
        self._window(deployment, index).add(index, requests=1)

    def try_spend(self, deployment: str) -> bool:
        """May one retry go to ``deployment`` now? True spends it."""
        index = self._bucket_index()
        window = self._window(deployment, index)
        if window.retries + 1 <= self._ratio * window.requests + self._floor:
            window.add(index, retries=1)
            self._granted += 1
            return True
        self._refused += 1
        return False

    def _bucket_index(self) -> int:
        return math.floor(self._clock.now() / self._bucket_seconds)

    def _window(self, deployment: str, index: int) -> _Window:
        """``deployment``'s window, without buckets older than the window ending at ``index``."""
        self._sweep(index)
        window = self._windows.get(deployment)
        if window is None:
            window = self._windows[deployment] = _Window()
        window.expire(index - _BUCKETS + 1)
        return window

    def _sweep(self, index: int) -> None:
        # Once per window, forget deployments with nothing left inside it, so names that
        # stop receiving traffic do not hold memory forever.
        if self._clock.now() < self._next_sweep:
            return
        self._next_sweep = self._clock.now() + self._bucket_seconds * _BUCKETS
        for name in list(self._windows):
            window = self._windows[name]
            window.expire(index - _BUCKETS + 1)
            if not window.buckets:
                del self._windows[name]
