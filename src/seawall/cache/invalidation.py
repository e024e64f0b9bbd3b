"""Cache invalidation by tenant, model and age, applied by every instance.

An invalidation says "entries stored before T, of this tenant and this model, are
stale" (no tenant or no model: any). It is a row in the ``cache_invalidations``
table, written by the admin API or the CLI, so it reaches every instance and every
worker whatever the cache backend: ``Invalidations`` holds the rows in memory,
reloaded every few seconds (``stores.periodic_reload``), and a lookup that finds a
stale entry treats it as a miss and overwrites it with the fresh answer. Invalidating
"older than N seconds" is T = now - N. A row outlives its use once every entry it
could match has expired (the cache TTL); only rows younger than that are loaded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cache.store import CacheEntry
from seawall.stores.periodic_reload import PeriodicReload
from seawall.stores.tables import cache_invalidations

WallClock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Invalidation:
    """Entries stored before ``stored_before`` of ``tenant`` and ``model`` (None: any)."""

    stored_before: float
    tenant: str | None = None
    model: str | None = None
    invalidation_id: str = ""
    created_at: float = 0.0

    def covers(self, entry: CacheEntry) -> bool:
        """Whether ``entry`` is stale by this invalidation."""
        return (
            entry.stored_at < self.stored_before
            and (self.tenant is None or self.tenant == entry.tenant)
            and (self.model is None or self.model == entry.model)
        )


class SqlInvalidations:
    """Invalidations in SQL (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine, *, wall_clock: WallClock = time.time) -> None:
        self._engine = engine
        self._wall_clock = wall_clock

    async def add(
        self, *, tenant: str | None, model: str | None, older_than_s: float = 0.0
    ) -> Invalidation:
        """Invalidate the matching entries stored more than ``older_than_s`` seconds ago."""
        now = self._wall_clock()
        row = Invalidation(
            stored_before=now - older_than_s,
            tenant=tenant,
            model=model,
            invalidation_id="inv_" + os.urandom(8).hex(),
            created_at=now,
        )
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(cache_invalidations).values(
                    invalidation_id=row.invalidation_id,
                    tenant_id=tenant,
                    model=model,
                    stored_before=row.stored_before,
                    created_at=now,
                )
            )
        return row

    async def since(self, created_after: float) -> list[Invalidation]:
        """Every invalidation made after ``created_after``."""
        table = cache_invalidations
        query = select(table).where(table.c.created_at > created_after)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            Invalidation(
                stored_before=row["stored_before"],
                tenant=row["tenant_id"],
                model=row["model"],
                invalidation_id=row["invalidation_id"],
                created_at=row["created_at"],
            )
            for row in rows
        ]


class Invalidations:
    """The invalidations that can still match a live entry, in memory, kept current."""

    def __init__(
        self,
        load: Callable[[float], Awaitable[list[Invalidation]]],
        *,
        ttl_s: float,
        refresh_s: float,
        wall_clock: WallClock = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._wall_clock = wall_clock
        self._rules: tuple[Invalidation, ...] = ()
        self._reloads = PeriodicReload("cache invalidations", self.refresh, refresh_s, sleep=sleep)

    async def start(self) -> None:
        """Load now (raises if the load fails), then keep reloading."""
        await self.refresh()
        self._reloads.start()

    async def refresh(self) -> None:
        """Load the invalidations made within the cache TTL."""
        self._rules = tuple(await self._load(self._wall_clock() - self._ttl_s))

    def add(self, invalidation: Invalidation) -> None:
        """Apply one at once (this instance made it; the others load it)."""
        self._rules = (*self._rules, invalidation)

    def stale(self, entry: CacheEntry) -> bool:
        """Whether some invalidation covers ``entry``."""
        return any(rule.covers(entry) for rule in self._rules)

    async def aclose(self) -> None:
        """Stop reloading."""
        await self._reloads.aclose()
