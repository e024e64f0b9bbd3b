"""Usage reports on how well each model serves: latency percentiles and per-model rates.

Like the reports in ``analytics``, each is one query over the ``requests`` table that runs
unchanged on SQLite and PostgreSQL, and returns plain rows keyed by its columns.

Percentiles are nearest-rank: the p-th percentile of n latencies is the
``ceil(p * n / 100)``-th smallest, an observed latency rather than an interpolated one.
SQLite has no percentile function, so the database numbers each model's latencies in
order with ``row_number()`` and picks those ranks; the ranks use integer arithmetic
(``(p * n + 99) // 100``), which both databases compute alike. Nothing but one row per
model leaves the database, however many requests the window holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.control.report_filters import ReportFilters
from seawall.control.report_sql import fetch_rows, share, window
from seawall.stores.tables import requests

if TYPE_CHECKING:  # analytics registers these reports, so it imports this module
    from seawall.control.analytics import Row

# The cache results that mean the cache was looked up (``bypass`` means it was not).
_HITS = ("hit-exact", "hit-semantic")
_LOOKUPS = (*_HITS, "miss")
_PERCENTILES = (50, 95, 99)
_R = requests.c


async def latency_by_model(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Mean and p50/p95/p99 latency (ms) of each model's answered requests, busiest first.

    Answered means a status below 400: a request refused at once would pull the
    percentiles down. Cache hits count; clients waited for them too.
    """
    ranked = (
        select(
            _R.public_model,
            _R.latency_ms,
            func.row_number()
            .over(partition_by=_R.public_model, order_by=_R.latency_ms)
            .label("rank"),
            func.count().over(partition_by=_R.public_model).label("answered"),
        )
        .where(*window(filters), _R.status_code < 400)
        .subquery()
    )
    r = ranked.c
    query = (
        select(
            r.public_model,
            func.max(r.answered).label("answered"),
            func.avg(r.latency_ms).label("mean_ms"),
            *(_at_rank(r.latency_ms, r.rank, r.answered, p).label(f"p{p}") for p in _PERCENTILES),
        )
        .group_by(r.public_model)
        .order_by(func.max(r.answered).desc(), r.public_model.asc().nulls_last())
    )
    return [
        {
            "model": row["public_model"],
            "answered": int(row["answered"]),
            "mean_ms": _ms(row["mean_ms"]),
            **{f"p{p}_ms": _ms(row[f"p{p}"]) for p in _PERCENTILES},
        }
        for row in await fetch_rows(engine, query)
    ]


async def rates_by_model(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Each model's error, refusal and cache hit rates, the busiest model first.

    A rate is None when nothing it is a share of happened: no answer was checked for
    refusal (detection off, or every request failed), or the cache was never looked up.
    """
    requests = func.count().label("requests")
    query = (
        select(
            _R.public_model,
            requests,
            _count(_R.status_code >= 400).label("errors"),
            func.count(_R.refused).label("checked"),
            _count(_R.refused.is_(True)).label("refusals"),
            _count(_R.cache.in_(_LOOKUPS)).label("lookups"),
            _count(_R.cache.in_(_HITS)).label("hits"),
        )
        .where(*window(filters))
        .group_by(_R.public_model)
        .order_by(requests.desc(), _R.public_model.asc().nulls_last())
    )
    rows: list[Row] = []
    for row in await fetch_rows(engine, query):
        checked, lookups = int(row["checked"]), int(row["lookups"])
        rows.append(
            {
                "model": row["public_model"],
                "requests": int(row["requests"]),
                "errors": int(row["errors"]),
                "error_rate": share(row["errors"], row["requests"]),
                "answers_checked": checked,
                "refusals": int(row["refusals"]),
                "refusal_rate": share(row["refusals"], checked) if checked else None,
                "cache_lookups": lookups,
                "cache_hits": int(row["hits"]),
                "cache_hit_rate": share(row["hits"], lookups) if lookups else None,
            }
        )
    return rows


def _at_rank(
    value: ColumnElement[Any], rank: ColumnElement[Any], count: ColumnElement[Any], p: int
) -> ColumnElement[Any]:
    # The one value of the group whose rank is ceil(p * count / 100).
    nearest = (literal(p) * count + literal(99)) // literal(100)
    return func.min(case((rank == nearest, value)))


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)
