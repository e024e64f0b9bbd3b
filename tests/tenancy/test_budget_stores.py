"""Budget stores: one contract, run against the in-memory store and the Redis store.

Both run on an injected wall clock, so period boundaries are crossed without waiting.
The Redis store runs against the real Redis at 127.0.0.1:6379 under a key prefix of
the test's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.budget_redis import RedisBudgetStore
from seawall.tenancy.budgets import (
    BudgetRule,
    BudgetStore,
    Charge,
    MemoryBudgetStore,
    OverBudget,
    Reservation,
    Window,
)
from tests.tenancy.budget_fixtures import budget_prefix, redis_client
from tests.tenancy.wall_clock import FakeWallClock, utc

__all__ = ["budget_prefix", "redis_client"]


@dataclass
class StoreEnv:
    """How to build a store of one kind, its wall clock, and how to let holds lapse."""

    kind: str
    clock: FakeWallClock
    build: Callable[..., BudgetStore]
    stores: list[BudgetStore] = field(default_factory=list)

    def make(self, **options: Any) -> BudgetStore:
        """A store of this kind on the shared clock (and, for Redis, the test's prefix)."""
        store = self.build(**options)
        self.stores.append(store)
        return store

    async def let_holds_lapse(self, seconds: float) -> None:
        """Let ``seconds`` pass for reservation holds (Redis times them by its own clock)."""
        if self.kind == "redis":
            await asyncio.sleep(seconds)
        else:
            self.clock.advance(seconds)


@pytest.fixture(params=["memory", "redis"])
async def env(
    request: pytest.FixtureRequest, budget_prefix: str, redis_client: MultiplexedRedis
) -> AsyncIterator[StoreEnv]:
    """Each kind of store."""
    clock = FakeWallClock()
    if request.param == "memory":

        def build_memory(**options: Any) -> BudgetStore:
            return MemoryBudgetStore(clock, **options)

        yield StoreEnv("memory", clock, build_memory)
        return

    def build_redis(**options: Any) -> BudgetStore:
        return RedisBudgetStore(redis_client, wall_clock=clock, prefix=budget_prefix, **options)

    built = StoreEnv("redis", clock, build_redis)
    yield built
    # Every answer came from Redis, none from the local fallback.
    for store in built.stores:
        assert isinstance(store, RedisBudgetStore)
        assert (store.outages, store.local_calls) == (0, 0)


def charge(
    hard: float | None = 1.0,
    *,
    soft: float | None = None,
    scope: Any = "key",
    subject: str = "key_1",
    period: Any = "daily",
    tenant: str | None = None,
) -> Charge:
    """A charge to one budget rule."""
    return Charge(BudgetRule(scope, subject, period, soft_usd=soft, hard_usd=hard), tenant)


async def admitted(store: BudgetStore, charges: list[Charge], amount: float) -> bool:
    """Whether a reservation of ``amount`` on ``charges`` is admitted now (it is kept)."""
    try:
        await store.reserve(charges, amount)
    except OverBudget:
        return False
    return True


# --- Hard limits --------------------------------------------------------------------


async def test_requests_are_admitted_until_committed_spend_reaches_the_hard_limit(
    env: StoreEnv,
) -> None:
    store = env.make()
    key_budget = charge(hard=1.0)

    results = [await admitted(store, [key_budget], 0.4) for _ in range(4)]

    # 0.8 committed is below 1.0, so the third goes (one reservation over, at most).
    assert results == [True, True, True, False]
    with pytest.raises(OverBudget) as refused:
        await store.reserve([key_budget], 0.01)
    assert refused.value.charge == key_budget
    assert refused.value.reserved_usd == pytest.approx(1.2)
    assert refused.value.window == Window(utc("2026-03-15T00:00:00"), utc("2026-03-16T00:00:00"))


async def test_a_zero_hard_limit_refuses_every_request(env: StoreEnv) -> None:
    store = env.make()
    assert not await admitted(store, [charge(hard=0.0)], 0.0)


async def test_settling_charges_the_actual_cost_and_frees_the_rest_of_the_hold(
    env: StoreEnv,
) -> None:
    store = env.make()
    key_budget = charge(hard=1.0)
    reservation = await store.reserve([key_budget], 1.0)
    assert not await admitted(store, [key_budget], 0.01)

    assert await store.settle(reservation, 0.25) == ()

    assert await store.spent(key_budget) == pytest.approx(0.25)
    assert await admitted(store, [key_budget], 0.5)


async def test_a_refusal_holds_nothing_on_any_of_the_request_budgets(env: StoreEnv) -> None:
    store = env.make()
    key_budget = charge(hard=1.0)
    user_budget = charge(hard=0.5, scope="user", subject="alice", tenant="acme")
    await store.settle(await store.reserve([user_budget], 0.5), 0.5)

    with pytest.raises(OverBudget) as refused:
        await store.reserve([key_budget, user_budget], 0.3)

    assert refused.value.charge == user_budget
    assert refused.value.spent_usd == pytest.approx(0.5)
    # The key's budget is untouched: 0.7 + 0.29 still leaves it below its limit.
    await store.reserve([key_budget], 0.7)
    assert await admitted(store, [key_budget], 0.29)
    assert await store.spent(key_budget) == 0.0


async def test_every_budget_of_a_request_is_charged(env: StoreEnv) -> None:
    store = env.make()
    budgets = [
        charge(hard=5.0, scope="tenant", subject="acme"),
        charge(hard=5.0, scope="key", subject="key_1"),
        charge(hard=5.0, scope="feature", subject="search", tenant="acme", period="monthly"),
    ]
    await store.settle(await store.reserve(budgets, 0.1), 0.04)
    assert [await store.spent(budget) for budget in budgets] == [pytest.approx(0.04)] * 3


async def test_the_same_budget_listed_twice_is_charged_once(env: StoreEnv) -> None:
    store = env.make()
    key_budget = charge(hard=1.0)
    await store.settle(await store.reserve([key_budget, key_budget], 0.5), 0.3)
    assert await store.spent(key_budget) == pytest.approx(0.3)


async def test_user_session_and_feature_budgets_are_counted_per_tenant(env: StoreEnv) -> None:
    store = env.make()
    acme_alice = charge(hard=1.0, scope="user", subject="alice", tenant="acme")
    globex_alice = charge(hard=1.0, scope="user", subject="alice", tenant="globex")
    await store.settle(await store.reserve([acme_alice], 1.0), 1.0)

    assert not await admitted(store, [acme_alice], 0.1)
    assert await admitted(store, [globex_alice], 0.1)


async def test_200_concurrent_requests_against_a_budget_for_50_admit_exactly_50(
    env: StoreEnv,
) -> None:
    store = env.make()
    cost = 0.02
    key_budget = charge(hard=50 * cost)

    outcomes = await asyncio.gather(
        *(store.reserve([key_budget], cost) for _ in range(200)), return_exceptions=True
    )

    granted = [outcome for outcome in outcomes if isinstance(outcome, Reservation)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, OverBudget)]
    assert (len(granted), len(refused)) == (50, 150)
    await asyncio.gather(*(store.settle(reservation, cost) for reservation in granted))
    spent = await store.spent(key_budget)
    assert spent == pytest.approx(1.0)
    assert spent <= 1.0 + cost
    assert not await admitted(store, [key_budget], cost)


async def test_concurrent_requests_settling_below_their_hold_never_overshoot_by_more_than_one(
    env: StoreEnv,
) -> None:
    store = env.make()
    hold, cost = 0.05, 0.02
    key_budget = charge(hard=1.0)

    async def request() -> bool:
        try:
            reservation = await store.reserve([key_budget], hold)
        except OverBudget:
            return False
        await asyncio.sleep(0)  # the upstream call
        await store.settle(reservation, cost)
        return True

    results = await asyncio.gather(*(request() for _ in range(200)))

    spent = await store.spent(key_budget)
    assert spent == pytest.approx(results.count(True) * cost)
    assert spent <= 1.0 + hold


async def test_an_unsettled_reservation_lapses_and_frees_its_hold(env: StoreEnv) -> None:
    store = env.make(reservation_ttl_s=0.05)
    key_budget = charge(hard=1.0)
    await store.reserve([key_budget], 1.0)  # its instance "crashes": never settled
    assert not await admitted(store, [key_budget], 0.1)

    await env.let_holds_lapse(0.2)

    assert await admitted(store, [key_budget], 0.1)
    assert await store.spent(key_budget) == 0.0


async def test_settling_a_lapsed_reservation_still_charges_its_cost(env: StoreEnv) -> None:
    store = env.make(reservation_ttl_s=0.05)
    key_budget = charge(hard=1.0)
    reservation = await store.reserve([key_budget], 0.5)
    await env.let_holds_lapse(0.2)
    await store.reserve([key_budget], 0.1)  # releases the lapsed hold

    await store.settle(reservation, 0.5)

    assert await store.spent(key_budget) == pytest.approx(0.5)
    # Committed: 0.5 spent + 0.1 held; the lapsed hold is not released twice.
    assert await admitted(store, [key_budget], 0.4)
    assert not await admitted(store, [key_budget], 0.01)


# --- Periods ------------------------------------------------------------------------


async def spend(store: BudgetStore, budget: Charge, usd: float) -> None:
    """Reserve and settle ``usd`` on one budget."""
    await store.settle(await store.reserve([budget], usd), usd)


async def test_a_daily_budget_resets_at_utc_midnight(env: StoreEnv) -> None:
    store = env.make()
    env.clock.set("2026-03-15T23:59:00")
    key_budget = charge(hard=1.0)
    await spend(store, key_budget, 1.0)

    with pytest.raises(OverBudget) as refused:
        await store.reserve([key_budget], 0.1)
    assert refused.value.window.end == utc("2026-03-16T00:00:00")

    env.clock.set("2026-03-15T23:59:59.9")
    assert not await admitted(store, [key_budget], 0.1)
    env.clock.set("2026-03-16T00:00:00")
    assert await store.spent(key_budget) == 0.0
    assert await admitted(store, [key_budget], 0.1)


@pytest.mark.parametrize(
    ("last_moment", "next_period"),
    [
        ("2026-01-31T23:59:59", "2026-02-01T00:00:00"),
        ("2028-02-29T12:00:00", "2028-03-01T00:00:00"),
        ("2026-12-31T23:59:59", "2027-01-01T00:00:00"),
    ],
)
async def test_a_monthly_budget_resets_on_the_first_of_the_month(
    env: StoreEnv, last_moment: str, next_period: str
) -> None:
    store = env.make()
    env.clock.set(last_moment)
    tenant_budget = charge(hard=10.0, scope="tenant", subject="acme", period="monthly")
    await spend(store, tenant_budget, 10.0)
    assert not await admitted(store, [tenant_budget], 0.1)

    env.clock.set(next_period)

    assert await store.spent(tenant_budget) == 0.0
    assert await admitted(store, [tenant_budget], 0.1)


async def test_a_total_budget_never_resets(env: StoreEnv) -> None:
    store = env.make()
    session_budget = charge(hard=0.5, scope="session", subject="conv-1", period="total")
    await spend(store, session_budget, 0.5)

    env.clock.advance(400 * 86400)

    with pytest.raises(OverBudget) as refused:
        await store.reserve([session_budget], 0.1)
    assert refused.value.window == Window(0.0, None)
    assert await store.spent(session_budget) == pytest.approx(0.5)


# --- Soft limits ----------------------------------------------------------------------


async def test_a_soft_limit_is_reported_once_per_window(env: StoreEnv) -> None:
    store = env.make()
    key_budget = charge(hard=None, soft=0.5)

    async def settle(usd: float) -> list[float]:
        crossed = await store.settle(await store.reserve([key_budget], usd), usd)
        assert all(report.charge == key_budget for report in crossed)
        return [report.spent_usd for report in crossed]

    assert await settle(0.3) == []
    assert await settle(0.3) == [pytest.approx(0.6)]
    assert await settle(0.3) == []

    env.clock.set("2026-03-16T08:00:00")
    assert await settle(0.4) == []
    assert await settle(0.4) == [pytest.approx(0.8)]


async def test_soft_limits_do_not_refuse_anything(env: StoreEnv) -> None:
    store = env.make()
    key_budget = charge(hard=None, soft=0.1)
    await spend(store, key_budget, 5.0)
    assert await admitted(store, [key_budget], 1.0)


# --- Starting from the ledger ---------------------------------------------------------


@dataclass
class FakeLedger:
    """A ledger that knows one spend per account and counts how often it was asked."""

    spend: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, Window]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, charge: Charge, window: Window) -> float:
        self.calls.append((charge.account, window))
        await asyncio.sleep(0.05)  # a database round trip, long enough for others to ask
        if self.fail:
            raise ConnectionError("database is down")
        return self.spend.get(charge.account, 0.0)


async def test_a_new_counter_starts_from_the_ledger_once_however_many_ask(
    env: StoreEnv,
) -> None:
    key_budget = charge(hard=1.0)
    ledger = FakeLedger({key_budget.account: 0.9})
    store = env.make(ledger_spend=ledger)

    outcomes = await asyncio.gather(
        *(store.reserve([key_budget], 0.05) for _ in range(20)), return_exceptions=True
    )

    # 0.9 already spent: two more fit below 1.0 (0.9, 0.95), the rest are refused.
    assert sum(isinstance(outcome, Reservation) for outcome in outcomes) == 2
    assert await store.spent(key_budget) == pytest.approx(0.9)
    assert ledger.calls == [
        (key_budget.account, Window(utc("2026-03-15T00:00:00"), utc("2026-03-16T00:00:00")))
    ]


async def test_a_ledger_that_fails_counts_as_zero_spend(
    env: StoreEnv, caplog: pytest.LogCaptureFixture
) -> None:
    key_budget = charge(hard=1.0)
    store = env.make(ledger_spend=FakeLedger(fail=True))

    with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budgets"):
        assert await admitted(store, [key_budget], 0.5)

    assert "could not read the daily spend" in caplog.text
    assert await store.spent(key_budget) == 0.0


async def test_spend_already_past_the_soft_limit_in_the_ledger_is_not_reported_again(
    env: StoreEnv,
) -> None:
    key_budget = charge(hard=None, soft=0.5)
    store = env.make(ledger_spend=FakeLedger({key_budget.account: 0.7}))

    assert await store.settle(await store.reserve([key_budget], 0.1), 0.1) == ()


async def test_a_request_without_budgets_touches_nothing(env: StoreEnv) -> None:
    store = env.make(ledger_spend=FakeLedger(fail=True))
    reservation = await store.reserve([], 1.0)
    assert reservation.charges == ()
    assert await store.settle(reservation, 1.0) == ()
