"""Budgets: spend limits per tenant, key, user, session or feature tag, per UTC period.

A ``BudgetRule`` limits one subject's spend in one period: a UTC day, a UTC month, or
all time (``total``). A request is charged to every rule that applies to it (one
``Charge`` each). Before the upstream call the pipeline reserves the request's maximum
cost on all of them at once, or on none (``OverBudget`` names the rule that refused);
afterwards the reservation is settled with the actual cost.

Admission: a reservation is admitted while every hard budget's committed spend
(settled plus reserved) is below its limit. Concurrent requests therefore overshoot a
hard budget by at most the largest single reservation, and a request may still use
the last cents of a budget when its worst case is more than what remains.

Money is counted in integer nano-dollars, so fifty requests of 0.02 USD make exactly
1 USD on every store. Counters of user, session and feature budgets are kept per
tenant: two tenants' users both called "alice" never share, or drain, one budget.

When a store has no counter for a window (the window's first request, a restart, a
flushed Redis) it starts that counter from the ledger's spend in the window. A
reservation is held at most ``reservation_ttl_s``, so one that an instance never
settled (it crashed) frees its share of the budget on its own.

Stores: ``MemoryBudgetStore`` here (the embedded default, and the per-instance
fallback of the Redis store); ``budget_redis.RedisBudgetStore`` for several instances.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import quote

logger = logging.getLogger(__name__)

Scope = Literal["tenant", "key", "user", "session", "feature"]
Period = Literal["daily", "monthly", "total"]
SCOPES: tuple[Scope, ...] = ("tenant", "key", "user", "session", "feature")
PERIODS: tuple[Period, ...] = ("daily", "monthly", "total")
# Subjects that clients or tenants name themselves: their counters are kept per tenant.
TENANT_SCOPED: frozenset[Scope] = frozenset({"user", "session", "feature"})

# Wall-clock time: Unix seconds (UTC); periods begin at UTC midnight.
WallClock = Callable[[], float]

NANOS_PER_USD = 1_000_000_000
# How long a reservation holds budget when it is never settled (its instance died).
DEFAULT_RESERVATION_TTL_S = 900.0
# Counters outlive their window this long, so late settlements still find them.
KEEP_AFTER_WINDOW_S = 7200.0
# How long a counter waits for the ledger before starting from zero.
DEFAULT_LEDGER_TIMEOUT_S = 2.0


def to_nanos(usd: float) -> int:
    """US dollars as whole nano-dollars (negative amounts count as zero)."""
    return max(0, round(usd * NANOS_PER_USD))


def to_usd(nanos: int) -> float:
    """Nano-dollars as US dollars."""
    return nanos / NANOS_PER_USD


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """A spend limit for one subject of one scope in one period.

    ``soft_usd`` alerts once per window when settled spend reaches it; ``hard_usd``
    refuses requests once committed spend reaches it. At least one is set.
    """

    scope: Scope
    subject: str
    period: Period
    soft_usd: float | None = None
    hard_usd: float | None = None
    budget_id: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"budget scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.period not in PERIODS:
            raise ValueError(
                f"budget period must be one of {', '.join(PERIODS)}, not {self.period!r}"
            )
        if not self.subject:
            raise ValueError("a budget needs a subject (the tenant, key, user, session or tag)")
        if self.soft_usd is None and self.hard_usd is None:
            raise ValueError("a budget needs a soft limit, a hard limit, or both")
        for name, value in (("soft_usd", self.soft_usd), ("hard_usd", self.hard_usd)):
            if value is not None and not value >= 0:
                raise ValueError(f"budget {name} must be zero or more, not {value!r}")
        soft, hard = self.soft_usd, self.hard_usd
        if soft is not None and hard is not None and soft > hard:
            raise ValueError("a budget's soft limit cannot be above its hard limit")


@dataclass(frozen=True, slots=True)
class BudgetTemplate:
    """A default budget for every subject of one scope, e.g. for each key of a tier."""

    scope: Scope
    period: Period
    soft_usd: float | None = None
    hard_usd: float | None = None

    def __post_init__(self) -> None:
        self.for_subject("-")  # the same validation as a rule

    def for_subject(self, subject: str) -> BudgetRule:
        """This template as a rule for one subject."""
        return BudgetRule(self.scope, subject, self.period, self.soft_usd, self.hard_usd)


@dataclass(frozen=True, slots=True)
class Window:
    """One period's span in Unix seconds; ``end`` is None for the total period."""

    start: float
    end: float | None


def window_start(period: Period, at: float) -> float:
    """When the period containing ``at`` began (UTC midnight, first of the month, or 0)."""
    if period == "total":
        return 0.0
    moment = datetime.fromtimestamp(at, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "monthly":
        moment = moment.replace(day=1)
    return moment.timestamp()


def window_end(period: Period, at: float) -> float | None:
    """When the period containing ``at`` ends; None for the total period."""
    if period == "total":
        return None
    start = datetime.fromtimestamp(window_start(period, at), UTC)
    if period == "daily":
        return (start + timedelta(days=1)).timestamp()
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1).timestamp()
    return start.replace(month=start.month + 1).timestamp()


def window_of(period: Period, at: float) -> Window:
    """The window of ``period`` that contains ``at``."""
    return Window(window_start(period, at), window_end(period, at))


@dataclass(frozen=True, slots=True)
class Charge:
    """One rule a request is charged to; ``tenant_id`` separates tenant-scoped counters."""

    rule: BudgetRule
    tenant_id: str | None = None

    @property
    def account(self) -> str:
        """Whose money this is, independent of the limits: scope, tenant and subject."""
        tenant = "" if self.tenant_id is None else quote(self.tenant_id, safe="")
        return f"{self.rule.scope}:{tenant}:{self.rule.subject}"


def counter_key(charge: Charge, window: Window) -> str:
    """The name of one account's counter in one window (the subject comes last)."""
    return f"{charge.rule.period}:{int(window.start)}:{charge.account}"


def distinct_charges(charges: Iterable[Charge]) -> tuple[Charge, ...]:
    """The charges with each account and period once (the first one wins)."""
    seen: set[tuple[str, str]] = set()
    kept: list[Charge] = []
    for charge in charges:
        identity = (charge.account, charge.rule.period)
        if identity not in seen:
            seen.add(identity)
            kept.append(charge)
    return tuple(kept)


def new_reservation_id() -> str:
    """A unique, unguessable reservation id."""
    return os.urandom(9).hex()


@dataclass(frozen=True, slots=True)
class Reservation:
    """Budget held for one request until it is settled."""

    reservation_id: str
    charges: tuple[Charge, ...]
    windows: tuple[Window, ...]
    amount_nanos: int
    # Held on shared (Redis) state rather than this instance's own.
    shared: bool = False

    @property
    def amount_usd(self) -> float:
        """The amount held, in US dollars."""
        return to_usd(self.amount_nanos)


# What a request no budget covers holds: nothing.
NO_RESERVATION = Reservation("", (), (), 0)


@dataclass(frozen=True, slots=True)
class SoftLimitCrossed:
    """Settled spend reached a soft limit: reported once per account and window."""

    charge: Charge
    window: Window
    spent_usd: float


class OverBudget(Exception):
    """A hard budget refused a reservation; the pipeline answers ``BudgetExhausted``."""

    def __init__(self, charge: Charge, window: Window, spent_usd: float, reserved_usd: float):
        rule = charge.rule
        super().__init__(
            f"{rule.period} budget for {rule.scope} {rule.subject!r} is spent "
            f"({spent_usd:g} USD settled + {reserved_usd:g} USD reserved, hard {rule.hard_usd:g})"
        )
        self.charge = charge
        self.window = window
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd


# The ledger's spend of one account in one window, in US dollars.
LedgerSpend = Callable[[Charge, Window], Awaitable[float]]


class BudgetStore(Protocol):
    """Where budget spend and reservations are counted."""

    async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` on every charge, or raise ``OverBudget`` and hold nothing."""
        ...

    async def settle(
        self, reservation: Reservation, actual_usd: float
    ) -> tuple[SoftLimitCrossed, ...]:
        """Release the hold and add the actual cost; returns soft limits newly reached."""
        ...

    async def spent(self, charge: Charge) -> float:
        """Settled spend of the charge's account in its current window, in US dollars."""
        ...


class BudgetRuleLookup(Protocol):
    """The configured rules, as the hot path reads them (no I/O per call)."""

    def rules_for(self, scope: Scope, subject: str) -> Sequence[BudgetRule]:
        """Every rule for one subject of one scope (one per period at most)."""
        ...


class LedgerSeeds:
    """Each counter's starting spend, read from the ledger once however many ask at once.

    A ledger that fails or is too slow counts as zero spend (with a warning): the
    counter then starts now, and a window's first request never waits long.
    """

    def __init__(
        self, ledger_spend: LedgerSpend | None, *, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S
    ) -> None:
        self.failures = 0
        self._ledger_spend = ledger_spend
        self._timeout_s = timeout_s
        self._pending: dict[str, asyncio.Future[int]] = {}

    async def spend_nanos(self, key: str, charge: Charge, window: Window) -> int:
        """The ledger's spend for ``charge`` in ``window``, in nano-dollars."""
        if self._ledger_spend is None:
            return 0
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._read(self._ledger_spend, charge, window))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: one waiter giving up must not cancel the read the others wait for.
        return await asyncio.shield(pending)

    def _forget(self, key: str, done: asyncio.Future[int]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]

    async def _read(self, ledger_spend: LedgerSpend, charge: Charge, window: Window) -> int:
        try:
            async with asyncio.timeout(self._timeout_s):
                return to_nanos(await ledger_spend(charge, window))
        except Exception as exc:
            self.failures += 1
            logger.warning(
                "budgets: could not read the %s spend of %s from the ledger (%s: %s); "
                "counting from zero",
                charge.rule.period,
                charge.account,
                type(exc).__name__,
                exc,
            )
            return 0


@dataclass(slots=True)
class _Account:
    """One account's counter in one window."""

    spent: int
    forget_at: float | None
    alerted: bool = False
    reserved: int = 0
    # reservation id -> (nano-dollars held, wall time the hold lapses)
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)
    # The earliest any hold lapses, so most calls skip the scan.
    next_lapse: float = math.inf

    def hold(self, reservation_id: str, amount: int, until: float) -> None:
        self.reserved += amount
        self.holds[reservation_id] = (amount, until)
        self.next_lapse = min(self.next_lapse, until)

    def release_lapsed(self, now: float) -> None:
        if now < self.next_lapse:
            return
        lapsed = [rid for rid, (_, until) in self.holds.items() if until <= now]
        for rid in lapsed:
            self.reserved -= self.holds.pop(rid)[0]
        self.next_lapse = min((until for _, until in self.holds.values()), default=math.inf)


class MemoryBudgetStore:
    """``BudgetStore`` in this process: the embedded default and Redis's local fallback."""

    # How often counters of finished windows are swept away.
    _SWEEP_EVERY_S = 60.0

    def __init__(
        self,
        wall_clock: WallClock = time.time,
        *,
        ledger_spend: LedgerSpend | None = None,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        ledger_timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S,
    ) -> None:
        self._wall_clock = wall_clock
        self._seeds = LedgerSeeds(ledger_spend, timeout_s=ledger_timeout_s)
        self._reservation_ttl_s = reservation_ttl_s
        self._accounts: dict[str, _Account] = {}
        self._next_sweep = 0.0

    async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` on every charge, or raise ``OverBudget`` and hold nothing."""
        unique = distinct_charges(charges)
        if not unique:
            return NO_RESERVATION
        now = self._wall_clock()
        windows = tuple(window_of(charge.rule.period, now) for charge in unique)
        keys = [counter_key(charge, window) for charge, window in zip(unique, windows, strict=True)]
        await self._ensure(unique, windows, keys)
        # From here to the end no await: the check and the hold are one atomic step.
        self._sweep(now)
        accounts = [self._accounts.setdefault(key, _Account(0, None)) for key in keys]
        for charge, window, account in zip(unique, windows, accounts, strict=True):
            account.release_lapsed(now)
            hard = charge.rule.hard_usd
            if hard is not None and account.spent + account.reserved >= to_nanos(hard):
                raise OverBudget(charge, window, to_usd(account.spent), to_usd(account.reserved))
        amount = to_nanos(amount_usd)
        reservation_id = new_reservation_id()
        until = now + self._reservation_ttl_s
        for account in accounts:
            account.hold(reservation_id, amount, until)
        return Reservation(reservation_id, unique, windows, amount)

    async def settle(
        self, reservation: Reservation, actual_usd: float
    ) -> tuple[SoftLimitCrossed, ...]:
        """Release the hold and add the actual cost; returns soft limits newly reached."""
        actual = to_nanos(actual_usd)
        crossed: list[SoftLimitCrossed] = []
        for charge, window in zip(reservation.charges, reservation.windows, strict=True):
            account = self._accounts.get(counter_key(charge, window))
            if account is None:
                # Forgotten (window long over, or an outage began): the ledger has the cost.
                continue
            hold = account.holds.pop(reservation.reservation_id, None)
            if hold is not None:
                account.reserved -= hold[0]
            account.spent += actual
            soft = charge.rule.soft_usd
            if soft is not None and not account.alerted and account.spent >= to_nanos(soft):
                account.alerted = True
                crossed.append(SoftLimitCrossed(charge, window, to_usd(account.spent)))
        return tuple(crossed)

    async def spent(self, charge: Charge) -> float:
        """Settled spend of the charge's account in its current window, in US dollars."""
        window = window_of(charge.rule.period, self._wall_clock())
        key = counter_key(charge, window)
        await self._ensure((charge,), (window,), [key])
        account = self._accounts.get(key)
        return 0.0 if account is None else to_usd(account.spent)

    def clear(self) -> None:
        """Forget every counter; each starts again from the ledger when next used."""
        self._accounts.clear()

    async def _ensure(
        self, charges: Sequence[Charge], windows: Sequence[Window], keys: Sequence[str]
    ) -> None:
        for charge, window, key in zip(charges, windows, keys, strict=True):
            if key in self._accounts:
                continue
            spent = await self._seeds.spend_nanos(key, charge, window)
            if key in self._accounts:
                continue  # another request seeded it while this one waited
            soft = charge.rule.soft_usd
            forget_at = None if window.end is None else window.end + KEEP_AFTER_WINDOW_S
            # Spend already past the soft limit was alerted on before this counter existed.
            alerted = soft is not None and spent > 0 and spent >= to_nanos(soft)
            self._accounts[key] = _Account(spent, forget_at, alerted)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._SWEEP_EVERY_S
        done = [
            key
            for key, account in self._accounts.items()
            if account.forget_at is not None and account.forget_at <= now
        ]
        for key in done:
            del self._accounts[key]
