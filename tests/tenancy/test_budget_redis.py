"""The Redis budget store: shared across instances, started from the ledger, and its outages.

Sharing runs against the real Redis at 127.0.0.1:6379; outages against a private
``redis-server`` that the test kills; the ledger is a real SQLite or PostgreSQL
database holding request records.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from seawall.errors import ServiceUnavailable
from seawall.stores.database import create_engine
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.stores.sql_records import SqlRecordStore
from seawall.tenancy.budget_ledger import SqlLedgerSpend
from seawall.tenancy.budget_redis import RedisBudgetStore
from seawall.tenancy.budgets import (
    BudgetRule,
    Charge,
    MemoryBudgetStore,
    OverBudget,
    Reservation,
)
from tests.private_redis import PrivateRedis
from tests.redis_keyspace import REDIS_URL, delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.sample_records import sample_record
from tests.tenancy.budget_fixtures import (
    budget_prefix,
    redis_client,
)
from tests.tenancy.wall_clock import FakeWallClock, utc

__all__ = ["budget_prefix", "redis_client"]

KEY_BUDGET = Charge(BudgetRule("key", "key_1", "daily", hard_usd=1.0))


async def test_two_instances_admit_exactly_50_of_200_concurrent_requests_between_them(
    budget_prefix: str,
) -> None:
    clock = FakeWallClock()
    first, second = MultiplexedRedis(REDIS_URL), MultiplexedRedis(REDIS_URL)
    try:
        stores = [
            RedisBudgetStore(client, wall_clock=clock, prefix=budget_prefix)
            for client in (first, second)
        ]
        cost = 0.02

        outcomes = await asyncio.gather(
            *(stores[i % 2].reserve([KEY_BUDGET], cost) for i in range(200)),
            return_exceptions=True,
        )

        granted = [outcome for outcome in outcomes if isinstance(outcome, Reservation)]
        assert len(granted) == 50
        assert all(isinstance(o, OverBudget | Reservation) for o in outcomes)
        await asyncio.gather(
            *(stores[i % 2].settle(reservation, cost) for i, reservation in enumerate(granted))
        )
        assert await stores[0].spent(KEY_BUDGET) == pytest.approx(1.0)
        assert await stores[1].spent(KEY_BUDGET) == pytest.approx(1.0)
    finally:
        await first.aclose()
        await second.aclose()


async def test_counters_expire_two_hours_after_their_window_and_totals_never(
    budget_prefix: str, redis_client: MultiplexedRedis, inspect_redis: Redis
) -> None:
    clock = FakeWallClock("2026-03-15T23:00:00")
    store = RedisBudgetStore(redis_client, wall_clock=clock, prefix=budget_prefix)
    total = Charge(BudgetRule("tenant", "acme", "total", hard_usd=100.0))
    await store.reserve([KEY_BUDGET, total], 0.1)

    client = inspect_redis
    keys = {
        key.decode(): await client.pttl(key) async for key in client.scan_iter(f"{budget_prefix}*")
    }

    daily = {key: ttl for key, ttl in keys.items() if ":daily:" in key}
    forever = {key: ttl for key, ttl in keys.items() if ":total:" in key}
    # A spend hash and a hold set per counter; the daily ones live until 02:00.
    assert len(daily) == len(forever) == 2
    assert all(2.9 * 3600_000 < ttl <= 3 * 3600_000 for ttl in daily.values())
    assert list(forever.values()) == [-1, -1]


async def write_spend(url: str, records: list[dict[str, Any]]) -> None:
    """Write request records with costs into the ledger."""
    ledger = SqlRecordStore(create_engine(url))
    try:
        await ledger.write_batch([sample_record(**fields) for fields in records])
    finally:
        await ledger.aclose()


async def test_a_counter_lost_from_redis_starts_again_from_the_ledger(
    migrated_url: str, budget_prefix: str, redis_client: MultiplexedRedis
) -> None:
    clock = FakeWallClock("2026-03-15T18:00:00")
    await write_spend(
        migrated_url,
        [
            {"key_id": "key_1", "created_at": utc("2026-03-15T09:00:00"), "cost_usd": 0.5},
            {"key_id": "key_1", "created_at": utc("2026-03-15T17:00:00"), "cost_usd": 0.3},
            # Yesterday's, and another key's: not this counter's.
            {"key_id": "key_1", "created_at": utc("2026-03-14T23:59:59"), "cost_usd": 9.0},
            {"key_id": "key_2", "created_at": utc("2026-03-15T10:00:00"), "cost_usd": 9.0},
        ],
    )
    engine = create_engine(migrated_url)
    store = RedisBudgetStore(
        redis_client,
        wall_clock=clock,
        ledger_spend=SqlLedgerSpend(engine),
        prefix=budget_prefix,
    )
    try:
        assert await store.spent(KEY_BUDGET) == pytest.approx(0.8)
        await store.settle(await store.reserve([KEY_BUDGET], 0.1), 0.1)
        assert await store.spent(KEY_BUDGET) == pytest.approx(0.9)

        # Redis restarts empty (or is flushed): the ledger has the spend.
        await delete_prefix(budget_prefix)
        await write_spend(
            migrated_url,
            [{"key_id": "key_1", "created_at": utc("2026-03-15T17:30:00"), "cost_usd": 0.1}],
        )

        assert await admitted(store, 0.1)  # 0.9 spent: below 1.0
        assert not await admitted(store, 0.01)  # 0.9 spent + 0.1 held: the limit
        assert await store.spent(KEY_BUDGET) == pytest.approx(0.9)
        assert store.outages == 0
    finally:
        await engine.dispose()


async def admitted(store: RedisBudgetStore, amount: float) -> bool:
    """Whether one reservation on the key budget is admitted (it is kept)."""
    try:
        await store.reserve([KEY_BUDGET], amount)
    except OverBudget:
        return False
    return True


# --- Outages ----------------------------------------------------------------------------


async def test_hard_budgets_fail_closed_while_redis_is_down_and_resume_after(
    private_redis: PrivateRedis, budget_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    connection = RedisConnection(private_redis.url)
    now = FakeClock()
    store = RedisBudgetStore(
        connection.client, wall_clock=FakeWallClock(), now=now.now, retry_seconds=2.0
    )
    soft_only = Charge(BudgetRule("feature", "search", "daily", soft_usd=1.0), "acme")
    try:
        await store.settle(await store.reserve([KEY_BUDGET], 0.4), 0.4)

        private_redis.kill()
        with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_redis"):
            with pytest.raises(ServiceUnavailable) as refused:
                await store.reserve([KEY_BUDGET], 0.1)
            assert "fail closed" in caplog.text
            assert refused.value.status == 503
            assert refused.value.headers()["retry-after"] == "2"
            # Within the retry interval Redis is not even asked.
            with pytest.raises(ServiceUnavailable):
                await store.reserve([KEY_BUDGET, soft_only], 0.1)
            # Nothing to refuse on a soft-only budget's account: served, counted locally.
            reservation = await store.reserve([soft_only], 0.1)
            assert await store.settle(reservation, 0.1) == ()
        assert (store.outages, store.unavailable, store.local_calls) == (1, 2, 1)

        private_redis.start()  # empty: counters start again from the ledger
        now.advance(2.0)
        with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_redis"):
            assert isinstance(await store.reserve([KEY_BUDGET], 0.1), Reservation)
        assert "Redis is back" in caplog.text
    finally:
        await connection.aclose()


class _Ledger:
    """The ledger's spend for the key budget, as the records would sum it."""

    def __init__(self, spend: float) -> None:
        self.spend = spend

    async def __call__(self, charge: Charge, window: Any) -> float:
        return self.spend if charge == KEY_BUDGET else 0.0


async def test_fail_open_counts_locally_from_the_ledger_and_warns(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    connection = RedisConnection(private_redis.url)
    clock = FakeWallClock()
    ledger = _Ledger(0.0)
    store = RedisBudgetStore(
        connection.client,
        wall_clock=clock,
        ledger_spend=ledger,
        fail_open=True,
        fallback=MemoryBudgetStore(clock, ledger_spend=ledger),
        now=FakeClock().now,
    )
    try:
        await store.settle(await store.reserve([KEY_BUDGET], 0.7), 0.7)
        ledger.spend = 0.7  # the records of that request reached the ledger

        private_redis.kill()
        with caplog.at_level(logging.WARNING, logger="seawall.tenancy.budget_redis"):
            first = await store.reserve([KEY_BUDGET], 0.2)

        assert not first.shared
        assert "fail open" in caplog.text
        assert store.outages == 1
        # Local accounting started from the ledger's 0.7: the hard limit still holds.
        await store.settle(first, 0.2)
        assert await store.spent(KEY_BUDGET) == pytest.approx(0.9)
        assert isinstance(await store.reserve([KEY_BUDGET], 0.2), Reservation)
        with pytest.raises(OverBudget):
            await store.reserve([KEY_BUDGET], 0.2)
        assert store.local_calls == 3
    finally:
        await connection.aclose()
