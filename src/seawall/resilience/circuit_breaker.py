"""Circuit breakers per deployment: stop sending traffic to a deployment that is failing.

A breaker is CLOSED while the deployment is healthy: every call goes through and its
outcome lands in a sliding window (``WINDOW_BUCKETS`` time buckets spanning
``window_seconds``). When the window holds at least ``min_requests`` outcomes and the
share of failures reaches ``failure_rate``, the breaker OPENs: calls are refused for
the open period. After it, the breaker is HALF_OPEN: up to ``half_open_probes`` calls go
through as probes; when all succeed it closes (window cleared, open period reset), and
when one fails it opens again for twice the previous period (capped at
``max_open_seconds``). A probe slot whose outcome never arrives (its caller was
cancelled) expires after ``open_seconds``, so a lost probe cannot wedge the breaker.

The caller decides what a failure is (5xx, timeouts, connection errors; never a 429,
which is the rate budget's business). Outcomes that are not probes but arrive while the
breaker is OPEN or HALF_OPEN come from calls that started before it opened; they say
nothing about the deployment now and are ignored.

``MemoryBreakerStore`` keeps the state in this process (the embedded default);
``breaker_redis.RedisBreakerStore`` shares it between Seawall instances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from seawall.resilience.clock import Clock

# Time buckets per window: fine enough to slide smoothly, few enough to sum per outcome.
WINDOW_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When a deployment's breaker opens, and how it recovers."""

    window_seconds: float = 30.0
    min_requests: int = 10
    failure_rate: float = 0.5
    open_seconds: float = 15.0
    max_open_seconds: float = 300.0
    half_open_probes: int = 3

    def __post_init__(self) -> None:
        if not self.window_seconds > 0:
            raise ValueError("window_seconds must be > 0")
        if self.min_requests < 1:
            raise ValueError("min_requests must be >= 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate must be in (0, 1]")
        if not self.open_seconds > 0:
            raise ValueError("open_seconds must be > 0")
        if self.max_open_seconds < self.open_seconds:
            raise ValueError("max_open_seconds must be >= open_seconds")
        if self.half_open_probes < 1:
            raise ValueError("half_open_probes must be >= 1")


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """The answer to ``allow``: may this call go to the deployment?"""

    allowed: bool
    state: BreakerState
    probe: bool = False
    retry_in: float = 0.0


class BreakerStore(Protocol):
    """Breaker state per deployment, kept in memory or shared through Redis."""

    async def allow(self, deployment: str, settings: BreakerSettings) -> Permit:
        """Whether a call to ``deployment`` may go now (HALF_OPEN: as a probe)."""
        ...

    async def record(
        self, deployment: str, settings: BreakerSettings, *, success: bool, probe: bool = False
    ) -> BreakerState:
        """Count the outcome of a call that ``allow`` let through; the state after it."""
        ...

    async def state(self, deployment: str, settings: BreakerSettings) -> BreakerState:
        """The state the next ``allow`` will find (OPEN past its period reads HALF_OPEN)."""
        ...


@dataclass(slots=True)
class _Breaker:
    """One deployment's breaker, as ``MemoryBreakerStore`` keeps it."""

    state: BreakerState = BreakerState.CLOSED
    # Bucket index -> [successes, failures]; only buckets inside the window are kept.
    buckets: dict[int, list[int]] = field(default_factory=dict)
    open_until: float = 0.0
    period: float = 0.0
    # Expiry times of the probe slots handed out and not yet reported.
    probes: list[float] = field(default_factory=list)
    probe_successes: int = 0


# Frozen, so the common answer is one shared value rather than a new one per call.
_CLOSED = Permit(allowed=True, state=BreakerState.CLOSED)


class MemoryBreakerStore:
    """Breakers kept in this process: the embedded default, and Redis's fail-open twin."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    async def allow(self, deployment: str, settings: BreakerSettings) -> Permit:
        """Whether a call to ``deployment`` may go now (HALF_OPEN: as a probe)."""
        breaker = self._breakers.get(deployment)
        if breaker is None or breaker.state is BreakerState.CLOSED:
            return _CLOSED
        now = self._clock.now()
        if breaker.state is BreakerState.OPEN:
            if now < breaker.open_until:
                return Permit(False, BreakerState.OPEN, retry_in=breaker.open_until - now)
            breaker.state = BreakerState.HALF_OPEN
            breaker.probes = []
            breaker.probe_successes = 0
        breaker.probes = [expiry for expiry in breaker.probes if expiry > now]
        if len(breaker.probes) + breaker.probe_successes < settings.half_open_probes:
            breaker.probes.append(now + settings.open_seconds)
            return Permit(allowed=True, state=BreakerState.HALF_OPEN, probe=True)
        return Permit(False, BreakerState.HALF_OPEN, retry_in=min(breaker.probes) - now)

    async def record(
        self, deployment: str, settings: BreakerSettings, *, success: bool, probe: bool = False
    ) -> BreakerState:
        """Count the outcome of a call that ``allow`` let through; the state after it."""
        now = self._clock.now()
        breaker = self._breakers.setdefault(deployment, _Breaker())
        if breaker.state is BreakerState.CLOSED:
            self._count(breaker, settings, now, success=success)
            return breaker.state
        if breaker.state is BreakerState.OPEN or not probe:
            return _effective(breaker, now)
        if not success:
            _trip(breaker, now, min(breaker.period * 2, settings.max_open_seconds))
            return breaker.state
        if breaker.probes:
            # Outcomes carry no probe id; any outstanding slot stands for this one.
            breaker.probes.remove(min(breaker.probes))
        breaker.probe_successes += 1
        if breaker.probe_successes >= settings.half_open_probes:
            del self._breakers[deployment]  # closed, empty window, open period reset
            return BreakerState.CLOSED
        return breaker.state

    async def state(self, deployment: str, settings: BreakerSettings) -> BreakerState:
        """The state the next ``allow`` will find (OPEN past its period reads HALF_OPEN)."""
        breaker = self._breakers.get(deployment)
        if breaker is None:
            return BreakerState.CLOSED
        return _effective(breaker, self._clock.now())

    def _count(
        self, breaker: _Breaker, settings: BreakerSettings, now: float, *, success: bool
    ) -> None:
        current = math.floor(now * WINDOW_BUCKETS / settings.window_seconds)
        bucket = breaker.buckets.get(current)
        if bucket is None:
            # A new bucket: the window slid, so drop the buckets that fell out of it.
            for index in [index for index in breaker.buckets if index <= current - WINDOW_BUCKETS]:
                del breaker.buckets[index]
            bucket = breaker.buckets[current] = [0, 0]
        bucket[0 if success else 1] += 1
        # Judged on failures only: a success never opens a breaker.
        if success:
            return
        total = sum(successes + failures for successes, failures in breaker.buckets.values())
        failed = sum(failures for _, failures in breaker.buckets.values())
        if total >= settings.min_requests and failed / total >= settings.failure_rate:
            breaker.buckets.clear()
            _trip(breaker, now, settings.open_seconds)


def _trip(breaker: _Breaker, now: float, period: float) -> None:
    """Open ``breaker`` for ``period`` seconds from ``now``."""
    breaker.state = BreakerState.OPEN
    breaker.period = period
    breaker.open_until = now + period
    breaker.probes = []
    breaker.probe_successes = 0


def _effective(breaker: _Breaker, now: float) -> BreakerState:
    """``breaker``'s state as the next ``allow`` would see it."""
    if breaker.state is BreakerState.OPEN and now >= breaker.open_until:
        return BreakerState.HALF_OPEN
    return breaker.state
