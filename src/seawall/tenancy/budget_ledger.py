"""The ledger's spend for one budget account and window: where budget counters start.

Sums ``requests.cost_usd`` over the window's requests of the account's subject
(``tenant_id``, ``key_id``, ``user``, ``session_id`` or ``feature``), and for
tenant-scoped accounts of that tenant only, on SQLite and PostgreSQL alike. It runs
only when a counter is missing (a window's first request, a restart, a flushed
Redis), never per request. The ledger is written in batches, so the last second or so
of requests may not be in it yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.tables import requests
from seawall.tenancy.budgets import TENANT_SCOPED, Charge, Scope, Window

_SUBJECT_COLUMNS: Mapping[Scope, Column[str]] = {
    "tenant": requests.c.tenant_id,
    "key": requests.c.key_id,
    "user": requests.c.user,
    "session": requests.c.session_id,
    "feature": requests.c.feature,
}


class SqlLedgerSpend:
    """A ``LedgerSpend`` over the ``requests`` table; call it with a charge and a window."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, charge: Charge, window: Window) -> float:
        """US dollars the charge's account spent in ``window``, as the ledger recorded it."""
        rule = charge.rule
        query = select(func.coalesce(func.sum(requests.c.cost_usd), 0.0)).where(
            _SUBJECT_COLUMNS[rule.scope] == rule.subject,
            requests.c.created_at >= window.start,
        )
        if window.end is not None:
            query = query.where(requests.c.created_at < window.end)
        if rule.scope in TENANT_SCOPED:
            tenant = requests.c.tenant_id
            query = query.where(
                tenant.is_(None) if charge.tenant_id is None else tenant == charge.tenant_id
            )
        async with self._engine.connect() as connection:
            total = (await connection.execute(query)).scalar_one()
        return float(total)
