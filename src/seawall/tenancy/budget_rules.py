"""Budget rules: kept in the ``budgets`` table, read on the hot path from a cache.

``SqlBudgetRules`` is the control plane's view (put, list, get, delete). Each
subject, scope and period has at most one rule; putting it again replaces its limits
and keeps its id and its counters. ``CachedBudgetRules`` is the pipeline's view: an
in-memory index reloaded in the background every ``refresh_s`` seconds, so a request
never waits for the database and every instance sees a change within that time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.periodic_reload import PeriodicReload
from seawall.stores.tables import budgets
from seawall.tenancy.budgets import BudgetRule, Period, Scope, WallClock

logger = logging.getLogger(__name__)

DEFAULT_REFRESH_S = 5.0


def new_budget_id() -> str:
    """A fresh budget id."""
    return "bud_" + os.urandom(8).hex()


class SqlBudgetRules:
    """Budget rules in SQL (SQLite or PostgreSQL); the schema comes from ``migrate``."""

    def __init__(self, engine: AsyncEngine, *, wall_clock: WallClock = time.time) -> None:
        self._engine = engine
        self._wall_clock = wall_clock
        if engine.dialect.name == "postgresql":
            self._insert: Any = postgresql.insert
        elif engine.dialect.name == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"no budget rules for SQL dialect {engine.dialect.name!r}")

    async def put(self, rule: BudgetRule) -> BudgetRule:
        """Create the rule, or replace the limits of the one with its scope, subject, period."""
        statement = self._insert(budgets).values(
            budget_id=new_budget_id(),
            scope=rule.scope,
            subject=rule.subject,
            period=rule.period,
            soft_usd=rule.soft_usd,
            hard_usd=rule.hard_usd,
            created_at=self._wall_clock(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[budgets.c.scope, budgets.c.subject, budgets.c.period],
            set_={"soft_usd": statement.excluded.soft_usd, "hard_usd": statement.excluded.hard_usd},
        )
        query = select(budgets).where(
            budgets.c.scope == rule.scope,
            budgets.c.subject == rule.subject,
            budgets.c.period == rule.period,
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)
            row = (await connection.execute(query)).mappings().one()
        return _rule(row)

    async def list_rules(
        self, *, scope: Scope | None = None, subject: str | None = None
    ) -> list[BudgetRule]:
        """Every rule, or those of one scope and/or subject; unreadable rows are skipped."""
        query = select(budgets).order_by(budgets.c.scope, budgets.c.subject, budgets.c.period)
        if scope is not None:
            query = query.where(budgets.c.scope == scope)
        if subject is not None:
            query = query.where(budgets.c.subject == subject)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        rules: list[BudgetRule] = []
        for row in rows:
            try:
                rules.append(_rule(row))
            except ValueError as exc:
                # A row edited by hand must not take every other budget down with it.
                logger.warning("budgets: ignoring budget %s: %s", row["budget_id"], exc)
        return rules

    async def get(self, budget_id: str) -> BudgetRule | None:
        """One rule by id, or None."""
        query = select(budgets).where(budgets.c.budget_id == budget_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _rule(row)

    async def delete(self, budget_id: str) -> bool:
        """Remove one rule; False when there was none with that id."""
        statement = delete(budgets).where(budgets.c.budget_id == budget_id)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)


def _rule(row: Any) -> BudgetRule:
    return BudgetRule(
        scope=cast(Scope, row["scope"]),
        subject=row["subject"],
        period=cast(Period, row["period"]),
        soft_usd=row["soft_usd"],
        hard_usd=row["hard_usd"],
        budget_id=row["budget_id"],
    )


class CachedBudgetRules:
    """``BudgetRuleLookup`` from memory, reloaded every ``refresh_s`` in the background.

    ``start`` loads the rules before serving and starts the reloads
    (``stores.periodic_reload``), so a change made by any instance or the CLI applies
    everywhere within ``refresh_s``. A failed reload keeps the rules it had
    (``refresh_failures`` counts it).
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[Sequence[BudgetRule]]],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        refresh_s: float = DEFAULT_REFRESH_S,
    ) -> None:
        self._load = load
        self._index: dict[tuple[str, str], tuple[BudgetRule, ...]] = {}
        self._reloads = PeriodicReload("budget rules", self.refresh, refresh_s, sleep=sleep)

    @property
    def refresh_failures(self) -> int:
        """Background reloads that failed."""
        return self._reloads.failures

    async def start(self) -> None:
        """Load every rule now (raises if the load fails), then keep reloading."""
        await self.refresh()
        self._reloads.start()

    async def refresh(self) -> None:
        """Load every rule now (raises if the load fails)."""
        rules = await self._load()
        index: dict[tuple[str, str], list[BudgetRule]] = {}
        for rule in rules:
            index.setdefault((rule.scope, rule.subject), []).append(rule)
        self._index = {key: tuple(found) for key, found in index.items()}

    def rules_for(self, scope: Scope, subject: str) -> Sequence[BudgetRule]:
        """Every rule for one subject of one scope, from memory."""
        return self._index.get((scope, subject), ())

    async def aclose(self) -> None:
        """Stop reloading."""
        await self._reloads.aclose()
