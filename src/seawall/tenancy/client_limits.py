"""Client rate limits: requests and tokens per minute, per API key, end user and client IP.

Each subject (``key:<key id>``, ``user:<tenant>:<user>``, ``ip:<address>``) has two
GCRA schedules, one for requests and one for tokens. A schedule is a "theoretical
arrival time" (TAT): the moment the capacity used so far is replenished. A limit of
``L`` per period ``P`` spaces units ``P / L`` seconds apart and lets a subject that
was idle spend the whole period's worth at once; capacity comes back continuously,
and a subject idle for a full period is back to its initial state. A request fits
when booking it leaves its TAT at most one period ahead of now.

``check`` decides for every subject of a request at once and books all or nothing:
a request refused by one subject consumes nothing anywhere. The ``Decision`` says
when to come back and, for the headers, the limit, remaining capacity and time to
full reset of the tightest subject for requests and for tokens. The token cost is
an estimate made before the answer (prompt plus output allowance); ``settle``
charges or refunds the difference once the real usage is known.

A request larger than a subject's whole token limit passes only when that subject
is idle, and then holds it for as long as its tokens take at that rate: refusing
it forever would look like a 429 worth retrying.

``MemoryClientLimits`` keeps the schedules in this process (the embedded default);
``client_limits_redis.RedisClientLimits`` shares them between instances.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from seawall.resilience.clock import Clock

# Client limits are per minute, like OpenAI's.
PERIOD_SECONDS = 60.0
# Float slack when comparing a booking with the period.
EPSILON = 1e-9
# Float slack when turning a schedule into whole units left (a TAT on Redis's clock,
# around 1.7e9 s, carries about 2e-7 s of rounding).
UNIT_ROUNDING = 1e-6
# Longer end-user names are hashed into the subject, so a key stays small.
MAX_USER_CHARS = 128

Dimension = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """One subject's limits: requests and tokens per period (None = unlimited)."""

    rpm: int | None = None
    tpm: int | None = None
    period_seconds: float = PERIOD_SECONDS

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or unset, got {value!r}")
        if not self.period_seconds > 0:
            raise ValueError(f"period_seconds must be positive, got {self.period_seconds!r}")

    @property
    def unlimited(self) -> bool:
        """Whether this subject has no limit at all (and costs no store call)."""
        return self.rpm is None and self.tpm is None


# A subject and its limits, as the pipeline hands them to ``check``.
Entry = tuple[str, ClientLimits]


def key_subject(key_id: str) -> str:
    """The subject of an API key."""
    return f"key:{key_id}"


def user_subject(tenant_id: str, user: str) -> str:
    """The subject of an end user, scoped to the tenant (two tenants' "alice" differ)."""
    if len(user) > MAX_USER_CHARS:
        user = "sha256-" + hashlib.sha256(user.encode()).hexdigest()
    return f"user:{tenant_id}:{user}"


def ip_subject(address: str) -> str:
    """The subject of a client IP address."""
    return f"ip:{address}"


def describe_subject(subject: str) -> str:
    """A subject as a 429 message names it: "API key k1", "user 'alice'", "IP 10.0.0.1"."""
    kind, _, rest = subject.partition(":")
    if kind == "key":
        return f"API key {rest}"
    if kind == "user":
        return f"user '{rest.partition(':')[2]}'"
    if kind == "ip":
        return f"IP address {rest}"
    return subject


@dataclass(frozen=True, slots=True)
class Window:
    """Where one subject stands on one dimension, for the x-ratelimit-* headers."""

    subject: str
    limit: int
    remaining: int
    # Seconds until the subject is back to its full limit (OpenAI's "reset").
    reset_seconds: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """The subject and dimension that refused a request, and for how long."""

    subject: str
    dimension: Dimension
    limit: int
    used: int
    requested: int
    period_seconds: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to ``check``: booked or not, and the numbers the client is told."""

    allowed: bool
    # Refused: seconds until the whole request would fit (for Retry-After); else 0.
    retry_after: float = 0.0
    # The tightest subject per dimension (None: no subject limits that dimension).
    requests: Window | None = None
    tokens: Window | None = None
    refusal: Refusal | None = None


ALLOWED = Decision(allowed=True)


class ClientLimitStore(Protocol):
    """Client rate-limit schedules, one pair per subject."""

    async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Book one request of ``tokens`` tokens on every subject, or on none."""
        ...

    async def peek(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Whether ``check`` would allow the request now, and where subjects stand (no booking)."""
        ...

    async def settle(self, entries: Sequence[Entry], estimated: int, used: int) -> None:
        """Charge or refund the tokens a request really used against its estimate."""
        ...


# --- GCRA, shared by both stores (the Redis script does the same in Lua) ------------


def limited(entries: Sequence[Entry]) -> list[Entry]:
    """The entries that limit something, each subject once (its first entry wins)."""
    seen: set[str] = set()
    kept: list[Entry] = []
    for subject, limits in entries:
        if not limits.unlimited and subject not in seen:
            seen.add(subject)
            kept.append((subject, limits))
    return kept


def unit_seconds(limit: int, period: float) -> float:
    """Seconds of schedule one unit (request or token) takes."""
    return period / limit


def booked_tat(tat: float | None, now: float, cost: float, period: float) -> float | None:
    """The TAT after booking ``cost`` seconds, or None when the booking does not fit now."""
    start = now if tat is None or tat < now else tat
    new = start + cost
    # An oversized booking (cost > period) fits an idle schedule, and only that.
    if new - now <= max(period, cost) + EPSILON:
        return new
    return None


def wait_seconds(tat: float | None, now: float, cost: float, period: float) -> float:
    """Seconds until a booking of ``cost`` seconds would fit the schedule."""
    start = now if tat is None or tat < now else tat
    return max(0.0, start + cost - max(period, cost) - now)


def settled_tat(tat: float | None, now: float, delta: float) -> float:
    """The TAT moved by ``delta`` seconds; a refund never reaches before now."""
    start = now if tat is None else tat
    if delta >= 0:
        return max(start, now) + delta
    return max(start + delta, now)


def window(subject: str, limit: int, period: float, tat: float | None, now: float) -> Window:
    """One dimension of one subject as the headers report it."""
    ahead = 0.0 if tat is None else max(0.0, tat - now)
    remaining = math.floor((period - ahead) * limit / period + UNIT_ROUNDING)
    return Window(subject, limit, max(0, min(limit, remaining)), ahead)


def _tighter(current: Window | None, candidate: Window) -> Window:
    if current is None:
        return candidate
    # Least capacity left wins; on a tie, the one that takes longer to recover.
    if (candidate.remaining, -candidate.reset_seconds) < (
        current.remaining,
        -current.reset_seconds,
    ):
        return candidate
    return current


# The two TATs of one subject: (requests, tokens).
Schedules = tuple[float | None, float | None]


def plan(
    entries: Sequence[Entry], schedules: Sequence[Schedules], now: float, tokens: int
) -> list[Schedules] | None:
    """Every subject's TATs after booking the request, or None when one subject refuses."""
    booked: list[Schedules] = []
    for (_, limits), (request_tat, token_tat) in zip(entries, schedules, strict=True):
        period = limits.period_seconds
        if limits.rpm is not None:
            request_tat = booked_tat(request_tat, now, unit_seconds(limits.rpm, period), period)
            if request_tat is None:
                return None
        if limits.tpm is not None:
            token_tat = booked_tat(
                token_tat, now, tokens * unit_seconds(limits.tpm, period), period
            )
            if token_tat is None:
                return None
        booked.append((request_tat, token_tat))
    return booked


def decide(
    entries: Sequence[Entry],
    schedules: Sequence[Schedules],
    now: float,
    tokens: int,
    allowed: bool,
) -> Decision:
    """The decision reported for ``schedules`` (after booking when allowed, as found if not)."""
    requests: Window | None = None
    token_window: Window | None = None
    refusal: Refusal | None = None
    longest = 0.0
    for (subject, limits), (request_tat, token_tat) in zip(entries, schedules, strict=True):
        period = limits.period_seconds
        for dimension, limit, tat, units in (
            ("requests", limits.rpm, request_tat, 1),
            ("tokens", limits.tpm, token_tat, tokens),
        ):
            if limit is None:
                continue
            current = window(subject, limit, period, tat, now)
            if dimension == "requests":
                requests = _tighter(requests, current)
            else:
                token_window = _tighter(token_window, current)
            if allowed:
                continue
            wait = wait_seconds(tat, now, units * unit_seconds(limit, period), period)
            if refusal is None or wait > longest:
                longest = wait
                refusal = Refusal(
                    subject,
                    "requests" if dimension == "requests" else "tokens",
                    limit,
                    limit - current.remaining,
                    units,
                    period,
                )
    if allowed:
        return Decision(True, 0.0, requests, token_window)
    # Never 0: the store found no room, so the client must wait at least a moment.
    return Decision(False, max(longest, 0.001), requests, token_window, refusal)


# --- In memory ----------------------------------------------------------------------


class MemoryClientLimits:
    """``ClientLimitStore`` kept in this process: exact for one instance."""

    def __init__(self, clock: Clock, sweep_seconds: float = PERIOD_SECONDS) -> None:
        self._clock = clock
        self._schedules: dict[str, Schedules] = {}
        self._sweep_seconds = sweep_seconds
        self._next_sweep = clock.now() + sweep_seconds

    def __len__(self) -> int:
        """Subjects with state (idle ones are forgotten at the next sweep)."""
        return len(self._schedules)

    async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Book one request of ``tokens`` tokens on every subject, or on none."""
        return self._decide(entries, tokens, book=True)

    async def peek(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Whether ``check`` would allow the request now, and where subjects stand (no booking)."""
        return self._decide(entries, tokens, book=False)

    async def settle(self, entries: Sequence[Entry], estimated: int, used: int) -> None:
        """Charge or refund the tokens a request really used against its estimate."""
        if used == estimated:
            return
        now = self._clock.now()
        for subject, limits in limited(entries):
            if limits.tpm is None:
                continue
            request_tat, token_tat = self._schedules.get(subject, (None, None))
            delta = (used - estimated) * unit_seconds(limits.tpm, limits.period_seconds)
            self._schedules[subject] = (request_tat, settled_tat(token_tat, now, delta))

    def _decide(self, entries: Sequence[Entry], tokens: int, *, book: bool) -> Decision:
        entries = limited(entries)
        if not entries:
            return ALLOWED
        now = self._clock.now()
        self._sweep(now)
        found = [self._schedules.get(subject, (None, None)) for subject, _ in entries]
        booked = plan(entries, found, now, tokens)
        if booked is None:
            return decide(entries, found, now, tokens, allowed=False)
        if not book:
            return decide(entries, found, now, tokens, allowed=True)
        for (subject, _), schedules in zip(entries, booked, strict=True):
            self._schedules[subject] = schedules
        return decide(entries, booked, now, tokens, allowed=True)

    def _sweep(self, now: float) -> None:
        """Forget subjects that are back to their full limit (IPs come and go)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_seconds
        idle = [
            subject
            for subject, (request_tat, token_tat) in self._schedules.items()
            if (request_tat is None or request_tat <= now)
            and (token_tat is None or token_tat <= now)
        ]
        for subject in idle:
            del self._schedules[subject]
