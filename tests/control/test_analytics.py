"""Usage reports over the sample ledger, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from seawall.control.analytics import REPORTS, run_report
from seawall.control.report_filters import MAX_LIMIT, ReportFilters, parse_filters
from seawall.errors import InvalidRequest, NotFound
from seawall.stores.database import async_url
from seawall.stores.sql_records import SqlRecordStore
from tests.control.sample_ledger import DAY, MARCH_1
from tests.stores.sample_records import sample_record

TOTAL_COST = 0.00036 + 0.000465 + 0.042 + 0.0495 + 0.12 + 0.0045


def share(part: float, whole: float = TOTAL_COST) -> float:
    return round(part / whole, 6)


async def report(engine: AsyncEngine, name: str, **params: str) -> list[dict[str, object]]:
    rows = await run_report(engine, name, parse_filters(params))
    return [dict(row) for row in rows]


async def test_daily_spend_is_per_utc_day_and_model(ledger: AsyncEngine) -> None:
    assert await report(ledger, "daily-spend") == [
        {
            "day": "2025-02-28",
            "model": "gpt-4o-mini",
            "requests": 1,
            "prompt_tokens": 1_200,
            "completion_tokens": 300,
            "cost_usd": 0.00036,
        },
        {
            "day": "2025-03-01",
            "model": "claude-sonnet",
            "requests": 2,
            "prompt_tokens": 17_000,
            "completion_tokens": 2_700,
            "cost_usd": 0.0915,
        },
        {
            "day": "2025-03-01",
            "model": "gpt-4o-mini",
            "requests": 1,
            "prompt_tokens": 1_500,
            "completion_tokens": 400,
            "cost_usd": 0.000465,
        },
        {
            "day": "2025-03-02",
            "model": "claude-sonnet",
            "requests": 2,
            "prompt_tokens": 21_000,
            "completion_tokens": 4_100,
            "cost_usd": 0.1245,
        },
        {
            "day": "2025-03-02",
            "model": "gpt-4o-mini",
            "requests": 3,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
        },
    ]


@pytest.fixture
def auckland_process_time() -> Iterator[None]:
    """The process's local time twelve hours ahead of UTC, as on a server in New Zealand."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Auckland"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_days_are_utc_whatever_the_server_time_zone(
    ledger: AsyncEngine, migrated_url: str, auckland_process_time: None
) -> None:
    # A PostgreSQL session in Auckland time, and (for SQLite) a process in it.
    engine = create_async_engine(
        async_url(migrated_url),
        connect_args=(
            {"server_settings": {"timezone": "Pacific/Auckland"}}
            if migrated_url.startswith("postgresql")
            else {}
        ),
    )
    try:
        rows = await report(engine, "daily-spend")
        top = await report(engine, "top-requests")
    finally:
        await engine.dispose()
    assert [(row["day"], row["requests"]) for row in rows] == [
        ("2025-02-28", 1),
        ("2025-03-01", 2),
        ("2025-03-01", 1),
        ("2025-03-02", 2),
        ("2025-03-02", 3),
    ]
    times = {row["request_id"]: row["created_at"] for row in top}
    assert times["req_alice_1"] == "2025-02-28T23:59:59Z"


async def test_since_is_inclusive_and_until_exclusive_at_midnight_utc(ledger: AsyncEngine) -> None:
    rows = await report(ledger, "daily-spend", since="2025-03-01", until="2025-03-02")
    assert [(row["day"], row["model"], row["requests"]) for row in rows] == [
        ("2025-03-01", "claude-sonnet", 2),
        ("2025-03-01", "gpt-4o-mini", 1),
    ]
    top = await report(ledger, "top-requests", since=str(MARCH_1), until=str(MARCH_1 + DAY))
    assert [row["request_id"] for row in top] == ["req_bob_2", "req_bob_1", "req_alice_2"]


async def test_spend_by_user_ranks_the_biggest_spender_first(ledger: AsyncEngine) -> None:
    assert await report(ledger, "spend", by="user") == [
        {
            "subject": "dave",
            "requests": 2,
            "prompt_tokens": 21_000,
            "completion_tokens": 4_100,
            "cost_usd": 0.1245,
            "cost_share": share(0.1245),
        },
        {
            "subject": "bob",
            "requests": 2,
            "prompt_tokens": 17_000,
            "completion_tokens": 2_700,
            "cost_usd": 0.0915,
            "cost_share": share(0.0915),
        },
        {
            "subject": "alice",
            "requests": 3,
            "prompt_tokens": 2_700,
            "completion_tokens": 700,
            "cost_usd": 0.000825,
            "cost_share": share(0.000825),
        },
        {
            "subject": "carol",
            "requests": 2,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost_usd": 0.0,
            "cost_share": 0.0,
        },
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("tenant", [("globex", 2, 0.1245), ("acme", 7, 0.092325)]),
        ("feature", [(None, 2, 0.1245), ("summarise", 2, 0.0915), ("chat", 5, 0.000825)]),
        (
            "key",
            [
                ("key_globex", 2, 0.1245),
                ("key_acme_batch", 2, 0.0915),
                ("key_acme_web", 5, 0.000825),
            ],
        ),
    ],
)
async def test_spend_by_tenant_feature_and_key(
    ledger: AsyncEngine, by: str, expected: list[tuple[str | None, int, float]]
) -> None:
    rows = await report(ledger, "spend", by=by)
    assert [(row["subject"], row["requests"], row["cost_usd"]) for row in rows] == expected
    assert sum(float(str(row["cost_share"])) for row in rows) == pytest.approx(1.0, abs=1e-5)


async def test_a_limit_keeps_the_top_rows_and_their_share_of_the_whole(ledger: AsyncEngine) -> None:
    rows = await report(ledger, "spend", by="user", limit="2")
    assert [(row["subject"], row["cost_share"]) for row in rows] == [
        ("dave", share(0.1245)),
        ("bob", share(0.0915)),
    ]


async def test_cost_per_conversation(ledger: AsyncEngine) -> None:
    rows = await report(ledger, "conversations")
    assert [
        (row["session_id"], row["requests"], row["started_at"], row["ended_at"], row["cost_usd"])
        for row in rows
    ] == [
        ("conv-4", 2, "2025-03-02T01:00:00Z", "2025-03-02T01:01:40Z", 0.1245),
        ("conv-2", 2, "2025-03-01T09:30:00Z", "2025-03-01T23:59:59Z", 0.0915),
        ("conv-1", 2, "2025-02-28T23:59:59Z", "2025-03-01T00:00:00Z", 0.000825),
        ("conv-3", 2, "2025-03-02T00:01:00Z", "2025-03-02T00:01:30Z", 0.0),
    ]
    assert rows[0]["models"] == 1
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (21_000, 4_100)


async def test_top_requests_are_the_most_expensive_first(ledger: AsyncEngine) -> None:
    rows = await report(ledger, "top-requests")
    assert [row["request_id"] for row in rows] == [
        "req_dave_1",
        "req_bob_2",
        "req_bob_1",
        "req_dave_2",
        "req_alice_2",
        "req_alice_1",
        # Free requests last, the newest first.
        "req_carol_2",
        "req_carol_1",
        "req_alice_limited",
    ]
    assert rows[0] == {
        "request_id": "req_dave_1",
        "created_at": "2025-03-02T01:00:00Z",
        "tenant_id": "globex",
        "key_id": "key_globex",
        "user": "dave",
        "session_id": "conv-4",
        "feature": None,
        "model": "claude-sonnet",
        "deployment": "anthropic-primary",
        "status_code": 200,
        "prompt_tokens": 20_000,
        "completion_tokens": 4_000,
        "latency_ms": 123.5,
        "cost_usd": 0.12,
    }
    assert len(await report(ledger, "top-requests", limit="3")) == 3


async def test_ranked_reports_show_fifty_rows_unless_asked(engine: AsyncEngine) -> None:
    await SqlRecordStore(engine).write_batch(
        [sample_record(cost_usd=index / 1000, session_id=f"s{index}") for index in range(60)]
    )
    top = await report(engine, "top-requests")
    assert len(top) == 50
    assert top[0]["cost_usd"] == 0.059
    assert len(await report(engine, "conversations")) == 50
    assert len(await report(engine, "top-requests", limit="60")) == 60
    assert len(await report(engine, "spend", by="user")) == 1  # no default limit


async def test_top_prompts_are_a_feature_and_its_model(ledger: AsyncEngine) -> None:
    assert await report(ledger, "top-prompts") == [
        {
            "feature": None,
            "model": "claude-sonnet",
            "requests": 2,
            "avg_prompt_tokens": 10_500.0,
            "avg_completion_tokens": 2_050.0,
            "avg_cost_usd": 0.06225,
            "max_cost_usd": 0.12,
            "cost_usd": 0.1245,
        },
        {
            "feature": "summarise",
            "model": "claude-sonnet",
            "requests": 2,
            "avg_prompt_tokens": 8_500.0,
            "avg_completion_tokens": 1_350.0,
            "avg_cost_usd": 0.04575,
            "max_cost_usd": 0.0495,
            "cost_usd": 0.0915,
        },
        {
            "feature": "chat",
            "model": "gpt-4o-mini",
            "requests": 5,
            "avg_prompt_tokens": 540.0,
            "avg_completion_tokens": 140.0,
            "avg_cost_usd": 0.000165,
            "max_cost_usd": 0.000465,
            "cost_usd": 0.000825,
        },
    ]


async def test_model_mix_shares_add_up(ledger: AsyncEngine) -> None:
    assert await report(ledger, "model-mix") == [
        {
            "model": "claude-sonnet",
            "requests": 4,
            "request_share": share(4, 9),
            "tokens": 44_800,
            "token_share": share(44_800, 48_200),
            "cost_usd": 0.216,
            "cost_share": share(0.216),
        },
        {
            "model": "gpt-4o-mini",
            "requests": 5,
            "request_share": share(5, 9),
            "tokens": 3_400,
            "token_share": share(3_400, 48_200),
            "cost_usd": 0.000825,
            "cost_share": share(0.000825),
        },
    ]


async def test_error_counts_with_the_models_error_rate(ledger: AsyncEngine) -> None:
    assert await report(ledger, "errors") == [
        {
            "model": "gpt-4o-mini",
            "status_code": 502,
            "error_type": "UpstreamUnavailable",
            "errors": 2,
            "error_rate": 0.4,
            "last_at": "2025-03-02T00:01:30Z",
        },
        {
            "model": "gpt-4o-mini",
            "status_code": 429,
            "error_type": "RateLimited",
            "errors": 1,
            "error_rate": 0.2,
            "last_at": "2025-03-02T00:00:00Z",
        },
    ]


async def test_a_tenant_sees_only_its_own_requests_in_every_report(ledger: AsyncEngine) -> None:
    assert [row["request_id"] for row in await report(ledger, "top-requests", tenant="globex")] == [
        "req_dave_1",
        "req_dave_2",
    ]
    assert await report(ledger, "errors", tenant="globex") == []
    mix = await report(ledger, "model-mix", tenant="globex")
    assert [(row["model"], row["request_share"], row["cost_share"]) for row in mix] == [
        ("claude-sonnet", 1.0, 1.0)
    ]
    users = await report(ledger, "spend", by="user", tenant="acme")
    assert [row["subject"] for row in users] == ["bob", "alice", "carol"]
    assert users[0]["cost_share"] == share(0.0915, 0.092325)
    days = await report(ledger, "daily-spend", tenant="globex")
    assert [(row["day"], row["cost_usd"]) for row in days] == [("2025-03-02", 0.1245)]


async def test_every_report_has_its_declared_columns_in_order(ledger: AsyncEngine) -> None:
    for name, spec in REPORTS.items():
        params = {"by": "user"} if "by" in spec.required else {}
        rows = await report(ledger, name, **params)
        assert rows, name
        for row in rows:
            assert tuple(row) == spec.columns, name


async def test_an_empty_ledger_gives_empty_reports(engine: AsyncEngine) -> None:
    for name, spec in REPORTS.items():
        params = {"by": "tenant"} if "by" in spec.required else {}
        assert await report(engine, name, **params) == [], name


@pytest.mark.parametrize(
    "text",
    [
        "1740787200",
        "1740787200.0",
        "2025-03-01",
        "2025-03-01T00:00:00",
        "2025-03-01T00:00:00Z",
        "2025-03-01T01:00:00+01:00",
    ],
)
def test_times_are_unix_seconds_dates_or_iso_times_in_utc(text: str) -> None:
    assert parse_filters({"since": text}).since == MARCH_1


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"since": "yesterday"}, "since", "2025-01-31"),
        ({"until": "nan"}, "until", "unix seconds"),
        ({"since": "2025-03-02", "until": "2025-03-01"}, "until", "later than"),
        ({"limit": "0"}, "limit", f"1 to {MAX_LIMIT}"),
        ({"limit": "ten"}, "limit", "whole number"),
        ({"limit": str(MAX_LIMIT + 1)}, "limit", "whole number"),
        ({"by": "planet"}, "by", "tenant"),
        ({"colour": "blue"}, "colour", "unknown report parameter"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    params: dict[str, str], param: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_filters(params)
    assert refused.value.param == param
    assert refused.value.status == 400
    assert message in refused.value.message


async def test_a_report_refuses_parameters_it_does_not_take(engine: AsyncEngine) -> None:
    with pytest.raises(NotFound, match="no report named 'spend-per-planet'"):
        await run_report(engine, "spend-per-planet", ReportFilters())
    with pytest.raises(InvalidRequest, match="needs 'by'") as missing:
        await run_report(engine, "spend", ReportFilters())
    assert missing.value.param == "by"
    with pytest.raises(InvalidRequest, match="does not take 'by'"):
        await run_report(engine, "daily-spend", ReportFilters(by="user"))
    with pytest.raises(InvalidRequest, match="does not take 'limit'"):
        await run_report(engine, "model-mix", ReportFilters(limit=3))


async def test_feedback_per_model_and_deployment(ledger: AsyncEngine) -> None:
    assert await report(ledger, "feedback", tenant="acme") == [
        {
            "model": "gpt-4o-mini",
            "deployment": "openai-primary",
            "rated": 2,
            "thumbs_up": 1,
            "thumbs_down": 1,
            "mean_score": 0.5,
        },
        {
            "model": "claude-sonnet",
            "deployment": "anthropic-primary",
            "rated": 1,
            "thumbs_up": 0,
            "thumbs_down": 0,
            "mean_score": 0.75,
        },
    ]
    assert await report(ledger, "feedback", tenant="globex") == []
