"""The ledger's spend per budget account and window, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from seawall.stores.database import create_engine
from seawall.stores.sql_records import SqlRecordStore
from seawall.tenancy.budget_ledger import SqlLedgerSpend
from seawall.tenancy.budgets import BudgetRule, Charge, Window, window_of
from tests.stores.sample_records import sample_record
from tests.tenancy.wall_clock import utc

MARCH_15 = window_of("daily", utc("2026-03-15T12:00:00"))
MARCH = window_of("monthly", utc("2026-03-15T12:00:00"))
EVER = Window(0.0, None)


def spend(at: str, usd: float, **who: Any) -> dict[str, Any]:
    """One request record's fields: when it arrived, what it cost, and whose it was."""
    return {"created_at": utc(at), "cost_usd": usd, **who}


RECORDS = [
    spend("2026-03-15T00:00:00", 0.10, tenant_id="acme", key_id="key_1", user="alice"),
    spend("2026-03-15T23:59:59", 0.20, tenant_id="acme", key_id="key_1", session_id="s1"),
    spend("2026-03-16T00:00:00", 0.40, tenant_id="acme", key_id="key_1", feature="search"),
    spend("2026-03-01T00:00:00", 0.80, tenant_id="acme", key_id="key_2", user="alice"),
    spend("2026-02-28T23:59:59", 1.60, tenant_id="acme", key_id="key_2", feature="search"),
    spend("2026-03-15T10:00:00", 3.20, tenant_id="globex", key_id="key_3", user="alice"),
    spend("2026-03-15T11:00:00", 6.40, key_id="key_4", user="alice", session_id="s1"),
]


@pytest.fixture
async def ledger(migrated_url: str) -> AsyncIterator[SqlLedgerSpend]:
    """A ledger holding ``RECORDS``."""
    engine = create_engine(migrated_url)
    records = SqlRecordStore(engine)
    await records.write_batch([sample_record(**fields) for fields in RECORDS])
    yield SqlLedgerSpend(engine)
    await engine.dispose()


def charge(scope: Any, subject: str, tenant: str | None = None) -> Charge:
    """A charge to a budget of ``scope`` and ``subject`` (limits do not matter here)."""
    return Charge(BudgetRule(scope, subject, "daily", hard_usd=1.0), tenant)


# (scope, subject, tenant, window) -> the spend the ledger must report.
EXPECTED: dict[tuple[str, str, str | None, Window], float] = {
    # A day's window includes its first second and excludes the next day's.
    ("key", "key_1", None, MARCH_15): 0.30,
    ("key", "key_1", None, MARCH): 0.70,
    ("tenant", "acme", None, MARCH): 1.50,
    ("tenant", "acme", None, EVER): 3.10,
    # User, session and feature budgets count their own tenant's requests only.
    ("user", "alice", "acme", MARCH): 0.90,
    ("user", "alice", "globex", MARCH_15): 3.20,
    ("user", "alice", None, MARCH_15): 6.40,
    ("session", "s1", "acme", MARCH_15): 0.20,
    ("feature", "search", "acme", EVER): 2.00,
    ("key", "key_9", None, EVER): 0.0,
}


async def test_the_ledger_sums_an_accounts_spend_in_a_window(ledger: SqlLedgerSpend) -> None:
    reported = {case: await ledger(charge(case[0], case[1], case[2]), case[3]) for case in EXPECTED}
    assert reported == {case: pytest.approx(usd) for case, usd in EXPECTED.items()}
