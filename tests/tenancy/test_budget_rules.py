"""Budget rules in SQL (SQLite and PostgreSQL) and the cache the hot path reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import insert

from seawall.stores.database import create_engine
from seawall.stores.tables import budgets
from seawall.tenancy.budget_rules import CachedBudgetRules, SqlBudgetRules
from seawall.tenancy.budgets import BudgetRule


@pytest.fixture
async def rules(migrated_url: str) -> AsyncIterator[SqlBudgetRules]:
    """Budget rules on a migrated database of each kind."""
    engine = create_engine(migrated_url)
    yield SqlBudgetRules(engine, wall_clock=lambda: 1_700_000_000.0)
    await engine.dispose()


async def test_a_rule_put_is_listed_and_found_by_id(rules: SqlBudgetRules) -> None:
    stored = await rules.put(BudgetRule("key", "key_1", "daily", soft_usd=1.0, hard_usd=2.0))

    assert stored.budget_id is not None and stored.budget_id.startswith("bud_")
    assert stored == BudgetRule("key", "key_1", "daily", 1.0, 2.0, stored.budget_id)
    assert await rules.get(stored.budget_id) == stored
    assert await rules.list_rules() == [stored]


async def test_putting_a_rule_again_replaces_its_limits_and_keeps_its_id(
    rules: SqlBudgetRules,
) -> None:
    first = await rules.put(BudgetRule("tenant", "acme", "monthly", hard_usd=100.0))
    second = await rules.put(BudgetRule("tenant", "acme", "monthly", soft_usd=150.0, hard_usd=200))

    assert second.budget_id == first.budget_id
    assert (second.soft_usd, second.hard_usd) == (150.0, 200.0)
    assert await rules.list_rules() == [second]


async def test_rules_are_listed_by_scope_and_subject(rules: SqlBudgetRules) -> None:
    daily = await rules.put(BudgetRule("user", "alice", "daily", hard_usd=1.0))
    total = await rules.put(BudgetRule("user", "alice", "total", hard_usd=10.0))
    key = await rules.put(BudgetRule("key", "alice", "daily", hard_usd=5.0))

    assert await rules.list_rules(scope="user") == [daily, total]
    assert await rules.list_rules(subject="alice") == [key, daily, total]
    assert await rules.list_rules(scope="key", subject="bob") == []


async def test_a_deleted_rule_is_gone(rules: SqlBudgetRules) -> None:
    stored = await rules.put(BudgetRule("session", "conv-1", "total", hard_usd=0.5))
    assert stored.budget_id is not None

    assert await rules.delete(stored.budget_id)
    assert not await rules.delete(stored.budget_id)
    assert await rules.get(stored.budget_id) is None
    assert await rules.list_rules() == []


async def test_an_unreadable_row_is_skipped_not_fatal(
    migrated_url: str, rules: SqlBudgetRules, caplog: pytest.LogCaptureFixture
) -> None:
    good = await rules.put(BudgetRule("feature", "search", "daily", hard_usd=3.0))
    engine = create_engine(migrated_url)
    async with engine.begin() as connection:
        await connection.execute(
            insert(budgets).values(
                budget_id="bud_bad", scope="planet", subject="mars", period="daily",
                hard_usd=1.0, created_at=0.0,
            )
        )  # fmt: skip
    await engine.dispose()

    assert await rules.list_rules() == [good]
    assert "bud_bad" in caplog.text


def test_invalid_rules_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="scope"):
        BudgetRule("planet", "mars", "daily", hard_usd=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="period"):
        BudgetRule("key", "key_1", "weekly", hard_usd=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="soft limit, a hard limit"):
        BudgetRule("key", "key_1", "daily")
    with pytest.raises(ValueError, match="zero or more"):
        BudgetRule("key", "key_1", "daily", hard_usd=-1.0)
    with pytest.raises(ValueError, match="above its hard"):
        BudgetRule("key", "key_1", "daily", soft_usd=2.0, hard_usd=1.0)


# --- The cache ------------------------------------------------------------------------


class Source:
    """Rules as the database holds them; counts loads and can fail."""

    def __init__(self, rules: Sequence[BudgetRule]) -> None:
        self.rules = list(rules)
        self.loads = 0
        self.fail = False

    async def __call__(self) -> Sequence[BudgetRule]:
        self.loads += 1
        if self.fail:
            raise ConnectionError("database is down")
        return list(self.rules)


class Ticks:
    """A sleep that returns when the test says an interval has passed."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()
        self._tick = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self._tick.wait()
        self._tick.clear()

    async def tick(self) -> None:
        """Let one interval pass and the reload after it run."""
        self.sleeping.clear()
        self._tick.set()
        await asyncio.wait_for(self.sleeping.wait(), timeout=5)


async def test_the_cache_answers_from_memory_and_reloads_every_interval() -> None:
    alice = BudgetRule("user", "alice", "daily", hard_usd=1.0)
    source = Source([alice])
    ticks = Ticks()
    cache = CachedBudgetRules(source, sleep=ticks.sleep, refresh_s=5.0)
    await cache.start()

    for _ in range(100):
        assert cache.rules_for("user", "alice") == (alice,)
    assert cache.rules_for("user", "bob") == ()
    assert source.loads == 1

    bob = BudgetRule("user", "bob", "monthly", hard_usd=2.0)
    source.rules.append(bob)
    await ticks.tick()

    # No request was needed to pick the change up.
    assert cache.rules_for("user", "bob") == (bob,)
    assert source.loads == 2
    await cache.aclose()


async def test_a_failed_reload_keeps_the_rules_and_retries_at_the_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice = BudgetRule("user", "alice", "daily", hard_usd=1.0)
    source = Source([alice])
    ticks = Ticks()
    cache = CachedBudgetRules(source, sleep=ticks.sleep, refresh_s=5.0)
    await cache.start()

    source.fail = True
    await ticks.tick()
    assert cache.rules_for("user", "alice") == (alice,)
    assert (source.loads, cache.refresh_failures) == (2, 1)
    assert "could not reload budget rules" in caplog.text

    source.fail = False
    source.rules.clear()
    await ticks.tick()
    assert cache.rules_for("user", "alice") == ()
    await cache.aclose()
