"""Provider rate budgets per deployment: request and token schedules, a learned rate, parking.

Each deployment has two GCRA schedules, one for requests and one for tokens. A
schedule is a "theoretical arrival time" (TAT): the moment the capacity booked so far
is used up. ``reserve`` books one request and its tokens at the earliest moment both
schedules allow, possibly in the future, and tells the caller how long to wait
before sending; bookings in the future make the schedule a FIFO queue that every
instance sharing the store waits in fairly. A reservation that would wait longer than
the caller can afford books nothing.

The request rate is the lower of the configured ``rpm`` and a rate learned from the
provider's 429s (for deployments whose limits are unknown or configured too high):
on a 429 the rate falls to what the provider demonstrably accepted (or halves), then
creeps back up, and is forgotten after a quiet minute. A 429 that asks for a long
pause, or an exhausted quota, parks the deployment: nothing is sent until it ends.

``MemoryRateBudget`` keeps the state in this process (the embedded default);
``rate_budget_redis.RedisRateBudget`` shares it between instances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from seawall.resilience.clock import Clock

# Floor of the learned rate (req/s): a deployment slower than this is parked, not throttled.
MIN_RATE = 0.5
# A 429 at least halves the learned rate: back off fast, as TCP does on congestion.
DECREASE_FACTOR = 0.5
# Without 429s the learned rate grows this fraction of itself per second: probe back up slowly.
GROWTH_PER_SECOND = 0.05
# Provider limits are per minute: a minute without a 429 means the learned rate is stale.
FORGET_AFTER_SECONDS = 60.0
# Successes are counted over this many per-second buckets to measure what the provider
# accepted: long enough that a 429 caused by a momentary burst (a stalled event loop
# sending a backlog at once) does not pass for a lower limit and ratchet the rate down.
SUCCESS_WINDOW_SECONDS = 5
# Answers further apart than this end a stretch of traffic: the next one starts a new
# stretch, measured from its own start (an idle gap would dilute the success rate).
STRETCH_GAP_SECONDS = 1.5
# A rate is learned only from this much observed time: the first 429s of a burst come
# back before any success does, and would teach a rate of almost nothing.
LEARNING_SECONDS = 1.0
# The 429s of one burst arrive together: they lower the rate once, not once each.
DECREASE_INTERVAL_SECONDS = 1.0
# An exhausted quota without Retry-After is tried again after this long.
QUOTA_PARK_SECONDS = 60.0
# Float rounding slack when comparing a computed wait with the caller's ``max_wait``.
WAIT_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A deployment's provider limits and how the budget adapts to them."""

    # Configured requests / tokens per minute; None = not configured.
    rpm: float | None = None
    tpm: float | None = None
    # Each schedule absorbs this many seconds of its rate at once (at least one request).
    burst_seconds: float = 0.1
    # Learn a request rate from 429s.
    adaptive: bool = True
    # A 429 asking to wait longer than this parks the deployment.
    park_after_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or unset, got {value!r}")
        if not self.burst_seconds >= 0:
            raise ValueError(f"burst_seconds must be >= 0, got {self.burst_seconds!r}")
        if not self.park_after_seconds >= 0:
            raise ValueError(f"park_after_seconds must be >= 0, got {self.park_after_seconds!r}")


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer to ``reserve``: send after ``wait`` seconds, or not at all."""

    granted: bool
    # Granted: seconds to wait before sending (0 = now). Refused: seconds until
    # capacity could exist (for Retry-After).
    wait: float
    parked: bool = False


class RateBudget(Protocol):
    """Shared provider rate budgets, one per deployment."""

    async def reserve(
        self, deployment: str, limits: RateLimits, tokens: int, max_wait: float
    ) -> Reservation:
        """Book one request of ``tokens`` tokens if it can be sent within ``max_wait``."""
        ...

    async def settle(
        self, deployment: str, limits: RateLimits, reserved_tokens: int, used_tokens: int
    ) -> None:
        """Charge or refund the difference between reserved and used tokens."""
        ...

    async def observe(
        self,
        deployment: str,
        limits: RateLimits,
        *,
        rate_limited: bool,
        retry_after: float | None = None,
        quota_exhausted: bool = False,
    ) -> None:
        """Learn from one provider answer: a success, a 429, or an exhausted quota."""
        ...

    async def snapshot(self, deployment: str) -> dict[str, float | None]:
        """The deployment's learned rate, parking and backlogs, for tests and metrics.

        Keys: ``adaptive_rate`` (learned req/s, None when none), ``parked_seconds``,
        ``request_backlog_seconds`` and ``token_backlog_seconds`` (how far each schedule
        is booked ahead of now; 0 when idle).
        """
        ...


def _earliest_send(tat: float | None, now: float, cost: float, burst_seconds: float) -> float:
    """When a booking of ``cost`` seconds may go on a schedule at ``tat`` (GCRA)."""
    if tat is None:
        return now
    # The window is at least the booking itself, so a lone oversized request is not
    # refused forever: it goes when the schedule is free and pushes the next ones back.
    window = max(burst_seconds, cost)
    return max(now, tat + cost - window)


def _booked_tat(tat: float | None, send: float, cost: float) -> float:
    """The schedule's TAT after a booking of ``cost`` seconds sent at ``send``."""
    return max(send if tat is None else tat, send) + cost


def _token_seconds(tokens: float, tpm: float) -> float:
    """How many seconds of a ``tpm`` schedule ``tokens`` tokens take."""
    return tokens * 60.0 / tpm


def parks_deployment(
    limits: RateLimits, rate_limited: bool, retry_after: float | None, quota: bool
) -> bool:
    """Whether this provider answer parks the deployment."""
    if quota:
        return True
    return rate_limited and retry_after is not None and retry_after > limits.park_after_seconds


def measured_span(now: float, first_seen: float) -> float:
    """The seconds the success buckets really cover: the current one is only partly over.

    The window's buckets span from the start of the oldest one to now, and no further
    back than the first answer ever observed.
    """
    start = max(math.floor(now) - SUCCESS_WINDOW_SECONDS + 1, first_seen)
    return max(LEARNING_SECONDS, now - start)


def _decreased_rate(current: float | None, measured: float) -> float:
    """The learned rate after a 429, given the rate before it and the measured successes/s."""
    new = max(MIN_RATE, measured, current * DECREASE_FACTOR if current is not None else 0.0)
    # A 429 never raises the rate, even if a burst measured more successes than it allows.
    return new if current is None else min(new, current)


def _settled_tat(tat: float | None, now: float, delta: float) -> float:
    """The token TAT after moving it by ``delta`` seconds; a refund stops at ``now``."""
    start = now if tat is None else tat
    if delta >= 0:
        # A schedule in the past stands at ``now``: the charge counts from there.
        return max(start, now) + delta
    return max(start + delta, now)


def snapshot_of(
    now: float,
    *,
    learned_rate: float | None,
    parked_until: float | None,
    request_tat: float | None,
    token_tat: float | None,
) -> dict[str, float | None]:
    """The snapshot dict both stores return."""

    def ahead(moment: float | None) -> float:
        return 0.0 if moment is None else max(0.0, moment - now)

    return {
        "adaptive_rate": learned_rate,
        "parked_seconds": ahead(parked_until),
        "request_backlog_seconds": ahead(request_tat),
        "token_backlog_seconds": ahead(token_tat),
    }


@dataclass(slots=True)
class _State:
    """One deployment's schedules and learned state (times on the injected clock)."""

    request_tat: float | None = None
    token_tat: float | None = None
    rate: float | None = None
    rate_at: float = 0.0
    last_429: float | None = None
    last_decrease: float | None = None
    parked_until: float | None = None
    successes: dict[int, int] = field(default_factory=dict)
    # When the current stretch of traffic began (answers no more than
    # STRETCH_GAP_SECONDS apart): the measuring span starts no earlier. And the latest
    # answer observed.
    first_seen: float | None = None
    last_seen: float | None = None

    def learned_rate(self, now: float) -> float | None:
        """The learned request rate now (grown since it was set), or None if none/forgotten."""
        if self.rate is None or self.last_429 is None:
            return None
        if now - self.last_429 >= FORGET_AFTER_SECONDS:
            return None
        growth = math.pow(1.0 + GROWTH_PER_SECOND, max(0.0, now - self.rate_at))
        return self.rate * growth

    def request_rate(self, limits: RateLimits, now: float) -> float | None:
        """The effective request rate (req/s), or None when requests are unlimited."""
        configured = limits.rpm / 60.0 if limits.rpm is not None else None
        learned = self.learned_rate(now) if limits.adaptive else None
        if configured is None or learned is None:
            return configured if learned is None else learned
        return min(configured, learned)

    def count_success(self, now: float) -> None:
        """Count one success in the current one-second bucket; drop buckets out of the window."""
        second = math.floor(now)
        count = self.successes.get(second)
        if count is None:
            # A new second: drop the ones that fell out of the window.
            for old in [s for s in self.successes if s <= second - SUCCESS_WINDOW_SECONDS]:
                del self.successes[old]
            count = 0
        self.successes[second] = count + 1

    def measured_rate(self, now: float) -> float:
        """Successes per second over the last ``SUCCESS_WINDOW_SECONDS`` buckets."""
        oldest = math.floor(now) - SUCCESS_WINDOW_SECONDS
        recent = sum(count for second, count in self.successes.items() if second > oldest)
        return recent / measured_span(now, self.first_seen if self.first_seen is not None else now)


class MemoryRateBudget:
    """``RateBudget`` kept in this process: exact for one instance, per-instance for many."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}

    async def reserve(
        self, deployment: str, limits: RateLimits, tokens: int, max_wait: float
    ) -> Reservation:
        """Book one request of ``tokens`` tokens if it can be sent within ``max_wait``."""
        now = self._clock.now()
        state = self._states.get(deployment)
        if state is None:
            if limits.rpm is None and limits.tpm is None:
                return Reservation(granted=True, wait=0.0)
            state = self._states[deployment] = _State()
        rate = state.request_rate(limits, now)
        parked_until = state.parked_until
        if rate is None and limits.tpm is None and (parked_until is None or parked_until <= now):
            return Reservation(granted=True, wait=0.0)

        send = now if parked_until is None else max(now, parked_until)
        if rate is not None:
            send = max(
                send, _earliest_send(state.request_tat, now, 1.0 / rate, limits.burst_seconds)
            )
        if limits.tpm is not None:
            cost = _token_seconds(tokens, limits.tpm)
            send = max(send, _earliest_send(state.token_tat, now, cost, limits.burst_seconds))
        wait = send - now
        if wait > max_wait + WAIT_EPSILON:
            parked = parked_until is not None and parked_until - now > max_wait + WAIT_EPSILON
            return Reservation(granted=False, wait=wait, parked=parked)

        if rate is not None:
            state.request_tat = _booked_tat(state.request_tat, send, 1.0 / rate)
        if limits.tpm is not None:
            state.token_tat = _booked_tat(state.token_tat, send, _token_seconds(tokens, limits.tpm))
        return Reservation(granted=True, wait=wait)

    async def settle(
        self, deployment: str, limits: RateLimits, reserved_tokens: int, used_tokens: int
    ) -> None:
        """Charge or refund the difference between reserved and used tokens."""
        if limits.tpm is None or used_tokens == reserved_tokens:
            return
        now = self._clock.now()
        state = self._states.setdefault(deployment, _State())
        delta = _token_seconds(used_tokens - reserved_tokens, limits.tpm)
        state.token_tat = _settled_tat(state.token_tat, now, delta)

    async def observe(
        self,
        deployment: str,
        limits: RateLimits,
        *,
        rate_limited: bool,
        retry_after: float | None = None,
        quota_exhausted: bool = False,
    ) -> None:
        """Learn from one provider answer: a success, a 429, or an exhausted quota."""
        parking = parks_deployment(limits, rate_limited, retry_after, quota_exhausted)
        learning = limits.adaptive and not quota_exhausted
        if not parking and not learning:
            return
        now = self._clock.now()
        state = self._states.setdefault(deployment, _State())
        if parking:
            park_for = retry_after if retry_after is not None else QUOTA_PARK_SECONDS
            if state.parked_until is None or now + park_for > state.parked_until:
                state.parked_until = now + park_for
        if not learning:
            return
        if state.last_seen is None or now - state.last_seen > STRETCH_GAP_SECONDS:
            state.first_seen = now
        state.last_seen = now
        if not rate_limited:
            state.count_success(now)
            return
        current = state.learned_rate(now)
        state.last_429 = now
        if state.first_seen is None or now - state.first_seen < LEARNING_SECONDS:
            return
        if (
            state.last_decrease is not None
            and now - state.last_decrease < DECREASE_INTERVAL_SECONDS
        ):
            return
        state.rate = _decreased_rate(current, state.measured_rate(now))
        state.rate_at = state.last_decrease = now
        # GCRA credits at most one burst window from a TAT in the past; starting the
        # schedule at ``now`` makes that explicit: the backlog cannot burst through.
        state.request_tat = max(now, state.request_tat if state.request_tat is not None else now)

    async def snapshot(self, deployment: str) -> dict[str, float | None]:
        """The deployment's learned rate, parking and backlogs, for tests and metrics."""
        now = self._clock.now()
        state = self._states.get(deployment) or _State()
        return snapshot_of(
            now,
            learned_rate=state.learned_rate(now),
            parked_until=state.parked_until,
            request_tat=state.request_tat,
            token_tat=state.token_tat,
        )
