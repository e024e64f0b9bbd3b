"""Usage reports over the request ledger: spend, conversations, top requests, model mix, errors.

Each report is one SQL query over the ``requests`` table that runs unchanged on SQLite
and PostgreSQL (only the UTC day bucket is spelled per dialect). Each returns plain rows
whose keys are its ``ReportSpec.columns`` in that order; costs and shares are rounded to
six decimals and times are ISO 8601 UTC. ``REPORTS`` names them for the admin API and
``seawall usage``, which both call :func:`run_report`. The latency and per-model rate
reports are in ``analytics_quality``; the SQL they all share is in ``report_sql``.

The ledger keeps no prompt text. ``top-prompts`` therefore ranks prompts by what
identifies one here: the feature that sends it and the model it goes to (the
``x-seawall-feature`` tag names a prompt template in practice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.control.analytics_quality import latency_by_model, rates_by_model
from seawall.control.report_filters import DIMENSIONS, ReportFilters
from seawall.control.report_sql import fetch_rows, share, window
from seawall.errors import InvalidRequest, NotFound
from seawall.stores.tables import feedback, requests

Cell = str | int | float | None
Row = dict[str, Cell]
Report = Callable[[AsyncEngine, ReportFilters], Awaitable[list[Row]]]

# Ranked lists (conversations, requests, prompts) show this many rows unless asked.
DEFAULT_TOP = 50
_DIGITS = 6
_R = requests.c


async def spend_by_day_and_model(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Requests, tokens and cost per UTC day and public model, oldest day first."""
    day = _utc_day(engine.dialect.name).label("day")
    cost = func.sum(_R.cost_usd).label("cost_usd")
    query = (
        select(day, _R.public_model, func.count().label("requests"), *_token_sums(), cost)
        .where(*window(filters))
        .group_by(day, _R.public_model)
        .order_by(day, cost.desc(), _R.public_model.asc().nulls_last())
    )
    return [
        {
            "day": row["day"],
            "model": row["public_model"],
            "requests": int(row["requests"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "cost_usd": _money(row["cost_usd"]),
        }
        for row in await fetch_rows(engine, query)
    ]


async def spend_by(engine: AsyncEngine, dimension: str, filters: ReportFilters) -> list[Row]:
    """Spend per tenant, user, feature or API key, the biggest spender first.

    Requests without a value for the dimension are one row whose subject is None.
    """
    if dimension not in DIMENSIONS:
        raise InvalidRequest(
            f"cannot group spend by {dimension!r}; expected one of {sorted(DIMENSIONS)}",
            param="by",
        )
    column = _R[DIMENSIONS[dimension]]
    cost = func.sum(_R.cost_usd).label("cost_usd")
    query = (
        select(
            column.label("subject"),
            func.count().label("requests"),
            *_token_sums(),
            cost,
            func.sum(func.sum(_R.cost_usd)).over().label("total_cost"),
        )
        .where(*window(filters))
        .group_by(column)
        .order_by(cost.desc(), column.asc().nulls_last())
        .limit(filters.limit)
    )
    return [
        {
            "subject": row["subject"],
            "requests": int(row["requests"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "cost_usd": _money(row["cost_usd"]),
            "cost_share": share(row["cost_usd"], row["total_cost"]),
        }
        for row in await fetch_rows(engine, query)
    ]


async def cost_per_conversation(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Cost of each conversation (requests sharing a session id), the dearest first."""
    cost = func.sum(_R.cost_usd).label("cost_usd")
    query = (
        select(
            _R.session_id,
            func.count().label("requests"),
            func.count(distinct(_R.public_model)).label("models"),
            func.min(_R.created_at).label("started_at"),
            func.max(_R.created_at).label("ended_at"),
            *_token_sums(),
            cost,
        )
        .where(*window(filters), _R.session_id.is_not(None))
        .group_by(_R.session_id)
        .order_by(cost.desc(), _R.session_id)
        .limit(filters.limit)
    )
    return [
        {
            "session_id": row["session_id"],
            "requests": int(row["requests"]),
            "models": int(row["models"]),
            "started_at": _iso(row["started_at"]),
            "ended_at": _iso(row["ended_at"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "cost_usd": _money(row["cost_usd"]),
        }
        for row in await fetch_rows(engine, query)
    ]


async def top_requests(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """The most expensive single requests, with who sent them and where they went."""
    query = (
        select(requests)
        .where(*window(filters))
        .order_by(_R.cost_usd.desc(), _R.created_at.desc(), _R.request_id)
        .limit(filters.limit)
    )
    return [
        {
            "request_id": row["request_id"],
            "created_at": _iso(row["created_at"]),
            "tenant_id": row["tenant_id"],
            "key_id": row["key_id"],
            "user": row["user"],
            "session_id": row["session_id"],
            "feature": row["feature"],
            "model": row["public_model"],
            "deployment": row["deployment"],
            "status_code": int(row["status_code"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "latency_ms": round(float(row["latency_ms"]), 1),
            "cost_usd": _money(row["cost_usd"]),
        }
        for row in await fetch_rows(engine, query)
    ]


async def top_prompts(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """The most expensive prompts, a prompt being a feature and the model it calls."""
    cost = func.sum(_R.cost_usd).label("cost_usd")
    query = (
        select(
            _R.feature,
            _R.public_model,
            func.count().label("requests"),
            *_token_sums(),
            func.max(_R.cost_usd).label("max_cost_usd"),
            cost,
        )
        .where(*window(filters))
        .group_by(_R.feature, _R.public_model)
        .order_by(cost.desc(), _R.feature.asc().nulls_last(), _R.public_model.asc().nulls_last())
        .limit(filters.limit)
    )
    rows: list[Row] = []
    for row in await fetch_rows(engine, query):
        count = int(row["requests"])
        rows.append(
            {
                "feature": row["feature"],
                "model": row["public_model"],
                "requests": count,
                "avg_prompt_tokens": round(int(row["prompt_tokens"]) / count, 1),
                "avg_completion_tokens": round(int(row["completion_tokens"]) / count, 1),
                "avg_cost_usd": _money(float(row["cost_usd"]) / count),
                "max_cost_usd": _money(row["max_cost_usd"]),
                "cost_usd": _money(row["cost_usd"]),
            }
        )
    return rows


async def model_mix(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Each public model's share of requests, tokens and cost, the costliest first."""
    tokens = _R.prompt_tokens + _R.completion_tokens
    cost = func.sum(_R.cost_usd).label("cost_usd")
    query = (
        select(
            _R.public_model,
            func.count().label("requests"),
            func.sum(tokens).label("tokens"),
            cost,
            func.sum(func.count()).over().label("total_requests"),
            func.sum(func.sum(tokens)).over().label("total_tokens"),
            func.sum(func.sum(_R.cost_usd)).over().label("total_cost"),
        )
        .where(*window(filters))
        .group_by(_R.public_model)
        .order_by(cost.desc(), func.count().desc(), _R.public_model.asc().nulls_last())
    )
    return [
        {
            "model": row["public_model"],
            "requests": int(row["requests"]),
            "request_share": share(row["requests"], row["total_requests"]),
            "tokens": int(row["tokens"]),
            "token_share": share(row["tokens"], row["total_tokens"]),
            "cost_usd": _money(row["cost_usd"]),
            "cost_share": share(row["cost_usd"], row["total_cost"]),
        }
        for row in await fetch_rows(engine, query)
    ]


async def feedback_by_model(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """End users' feedback per model and deployment (of requests in the window), most first."""
    rated = func.count().label("rated")
    query = (
        select(
            _R.public_model,
            _R.deployment,
            rated,
            func.sum(case((feedback.c.thumbs == "up", 1), else_=0)).label("thumbs_up"),
            func.sum(case((feedback.c.thumbs == "down", 1), else_=0)).label("thumbs_down"),
            func.avg(feedback.c.score).label("mean_score"),
        )
        .select_from(requests.join(feedback, feedback.c.request_id == _R.request_id))
        .where(*window(filters))
        .group_by(_R.public_model, _R.deployment)
        .order_by(rated.desc(), _R.public_model.asc().nulls_last(), _R.deployment.asc())
    )
    return [
        {
            "model": row["public_model"],
            "deployment": row["deployment"],
            "rated": int(row["rated"]),
            "thumbs_up": int(row["thumbs_up"]),
            "thumbs_down": int(row["thumbs_down"]),
            "mean_score": round(float(row["mean_score"]), 4),
        }
        for row in await fetch_rows(engine, query)
    ]


async def error_counts(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    """Failed requests (status 400 and up) per model, status and error type, commonest first.

    ``error_rate`` is the share of that model's requests in the window that failed so.
    """
    # The window total per model has to count successes too, so it is taken before
    # the failures are picked out.
    grouped = (
        select(
            _R.public_model,
            _R.status_code,
            _R.error_type,
            func.count().label("errors"),
            func.sum(func.count()).over(partition_by=_R.public_model).label("model_requests"),
            func.max(_R.created_at).label("last_at"),
        )
        .where(*window(filters))
        .group_by(_R.public_model, _R.status_code, _R.error_type)
        .subquery()
    )
    g = grouped.c
    query = (
        select(grouped)
        .where(g.status_code >= 400)
        .order_by(
            g.errors.desc(),
            g.public_model.asc().nulls_last(),
            g.status_code,
            g.error_type.asc().nulls_last(),
        )
        .limit(filters.limit)
    )
    return [
        {
            "model": row["public_model"],
            "status_code": int(row["status_code"]),
            "error_type": row["error_type"],
            "errors": int(row["errors"]),
            "error_rate": share(row["errors"], row["model_requests"]),
            "last_at": _iso(row["last_at"]),
        }
        for row in await fetch_rows(engine, query)
    ]


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """A report as the admin API and the CLI offer it."""

    name: str
    summary: str
    columns: tuple[str, ...]
    parameters: frozenset[str]  # names from ``report_filters.PARAMETERS`` it accepts
    run: Report
    required: frozenset[str] = frozenset()
    default_limit: int | None = None


_WINDOW = frozenset({"since", "until", "tenant"})
_TOKENS = ("prompt_tokens", "completion_tokens")


async def _spend(engine: AsyncEngine, filters: ReportFilters) -> list[Row]:
    assert filters.by is not None, "run_report checks that 'by' is given"
    return await spend_by(engine, filters.by, filters)


REPORTS = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ReportSpec(
                "daily-spend",
                "requests, tokens and cost per UTC day and model",
                ("day", "model", "requests", *_TOKENS, "cost_usd"),
                _WINDOW,
                spend_by_day_and_model,
            ),
            ReportSpec(
                "spend",
                "spend per tenant, user, feature or key (--by), biggest first",
                ("subject", "requests", *_TOKENS, "cost_usd", "cost_share"),
                _WINDOW | {"by", "limit"},
                _spend,
                required=frozenset({"by"}),
            ),
            ReportSpec(
                "conversations",
                "cost per conversation (session id), dearest first",
                (
                    "session_id",
                    "requests",
                    "models",
                    "started_at",
                    "ended_at",
                    *_TOKENS,
                    "cost_usd",
                ),
                _WINDOW | {"limit"},
                cost_per_conversation,
                default_limit=DEFAULT_TOP,
            ),
            ReportSpec(
                "top-requests",
                "the most expensive requests",
                (
                    "request_id",
                    "created_at",
                    "tenant_id",
                    "key_id",
                    "user",
                    "session_id",
                    "feature",
                    "model",
                    "deployment",
                    "status_code",
                    *_TOKENS,
                    "latency_ms",
                    "cost_usd",
                ),
                _WINDOW | {"limit"},
                top_requests,
                default_limit=DEFAULT_TOP,
            ),
            ReportSpec(
                "top-prompts",
                "the most expensive prompts: feature and model, by total cost",
                (
                    "feature",
                    "model",
                    "requests",
                    "avg_prompt_tokens",
                    "avg_completion_tokens",
                    "avg_cost_usd",
                    "max_cost_usd",
                    "cost_usd",
                ),
                _WINDOW | {"limit"},
                top_prompts,
                default_limit=DEFAULT_TOP,
            ),
            ReportSpec(
                "model-mix",
                "each model's share of requests, tokens and cost",
                (
                    "model",
                    "requests",
                    "request_share",
                    "tokens",
                    "token_share",
                    "cost_usd",
                    "cost_share",
                ),
                _WINDOW,
                model_mix,
            ),
            ReportSpec(
                "errors",
                "failed requests per model, status and error type",
                ("model", "status_code", "error_type", "errors", "error_rate", "last_at"),
                _WINDOW | {"limit"},
                error_counts,
            ),
            ReportSpec(
                "feedback",
                "end users' feedback (thumbs, mean score) per model and deployment",
                ("model", "deployment", "rated", "thumbs_up", "thumbs_down", "mean_score"),
                _WINDOW,
                feedback_by_model,
            ),
            ReportSpec(
                "latency",
                "mean and p50/p95/p99 latency of each model's answered requests",
                ("model", "answered", "mean_ms", "p50_ms", "p95_ms", "p99_ms"),
                _WINDOW,
                latency_by_model,
            ),
            ReportSpec(
                "model-rates",
                "each model's error, refusal and cache hit rates",
                (
                    "model",
                    "requests",
                    "errors",
                    "error_rate",
                    "answers_checked",
                    "refusals",
                    "refusal_rate",
                    "cache_lookups",
                    "cache_hits",
                    "cache_hit_rate",
                ),
                _WINDOW,
                rates_by_model,
            ),
        )
    }
)


async def run_report(engine: AsyncEngine, name: str, filters: ReportFilters) -> list[Row]:
    """Run the named report; ``NotFound`` for an unknown name, ``InvalidRequest`` for
    a parameter the report does not take or lacks."""
    spec = REPORTS.get(name)
    if spec is None:
        raise NotFound(f"no report named {name!r}; reports: {', '.join(REPORTS)}")
    given = filters.given()
    unwanted = sorted(given - spec.parameters)
    if unwanted:
        raise InvalidRequest(f"report {name!r} does not take {unwanted[0]!r}", param=unwanted[0])
    missing = sorted(spec.required - given)
    if missing:
        raise InvalidRequest(f"report {name!r} needs {missing[0]!r}", param=missing[0])
    if filters.limit is None and spec.default_limit is not None:
        filters = dataclasses.replace(filters, limit=spec.default_limit)
    return await spec.run(engine, filters)


def _token_sums() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    return (
        func.sum(_R.prompt_tokens).label("prompt_tokens"),
        func.sum(_R.completion_tokens).label("completion_tokens"),
    )


def _utc_day(dialect: str) -> ColumnElement[Any]:
    # Literal format strings, not bound parameters: PostgreSQL matches the GROUP BY
    # expression to the selected one only when both are spelled the same.
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), func.to_timestamp(_R.created_at))
        return func.to_char(utc, literal_column("'YYYY-MM-DD'"))
    if dialect == "sqlite":
        return func.strftime(
            literal_column("'%Y-%m-%d'"), _R.created_at, literal_column("'unixepoch'")
        )
    raise ValueError(f"no usage reports for SQL dialect {dialect!r}")


def _money(value: Any) -> float:
    return round(float(value or 0), _DIGITS)


def _iso(seconds: Any) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(float(seconds), UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
