"""The SQL every usage report shares: which requests a window holds, fetching rows, shares.

Kept apart from the reports so that report modules (``analytics``,
``analytics_quality``) use one definition of the window without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.control.report_filters import ReportFilters
from seawall.stores.tables import requests

_DIGITS = 6


def window(filters: ReportFilters) -> list[ColumnElement[bool]]:
    """The conditions on ``requests`` that pick the filters' time window and tenant."""
    conditions: list[ColumnElement[bool]] = []
    if filters.since is not None:
        conditions.append(requests.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(requests.c.created_at < filters.until)
    if filters.tenant_id is not None:
        conditions.append(requests.c.tenant_id == filters.tenant_id)
    return conditions


async def fetch_rows(engine: AsyncEngine, query: Select[Any]) -> Sequence[RowMapping]:
    """Every row of ``query``, by column name."""
    async with engine.connect() as connection:
        rows: Sequence[RowMapping] = (await connection.execute(query)).mappings().all()
    return rows


def share(part: Any, whole: Any) -> float:
    """``part / whole`` to six decimals; 0.0 when ``whole`` is 0."""
    # PostgreSQL sums of counts come back as Decimal; float() takes either.
    return round(float(part) / float(whole), _DIGITS) if whole else 0.0
