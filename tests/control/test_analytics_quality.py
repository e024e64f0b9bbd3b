"""Latency percentiles and per-model rates, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.control.analytics import run_report
from seawall.control.report_filters import parse_filters
from seawall.stores.sql_records import SqlRecordStore
from tests.stores.sample_records import sample_record


async def report(engine: AsyncEngine, name: str, **params: str) -> list[dict[str, object]]:
    rows = await run_report(engine, name, parse_filters(params))
    return [dict(row) for row in rows]


async def test_latency_of_answered_requests_per_model(ledger: AsyncEngine) -> None:
    # claude-sonnet answered in 123.456, 123.456, 310 and 2400 ms; gpt-4o-mini in 420
    # and 4 ms (a cache hit), and failed three times, which do not count.
    assert await report(ledger, "latency") == [
        {
            "model": "claude-sonnet",
            "answered": 4,
            "mean_ms": 739.2,
            "p50_ms": 123.5,
            "p95_ms": 2400.0,
            "p99_ms": 2400.0,
        },
        {
            "model": "gpt-4o-mini",
            "answered": 2,
            "mean_ms": 212.0,
            "p50_ms": 4.0,
            "p95_ms": 420.0,
            "p99_ms": 420.0,
        },
    ]


async def test_percentiles_are_nearest_rank_over_the_window(engine: AsyncEngine) -> None:
    # 1..100 ms in shuffled order, plus slow failures that must not move them.
    latencies = [float((i * 37) % 100 + 1) for i in range(100)]
    records = [sample_record(public_model="m", latency_ms=ms) for ms in latencies]
    records += [
        sample_record(public_model="m", status_code=502, error_type="Upstream", latency_ms=9e4)
        for _ in range(20)
    ]
    records.append(sample_record(public_model="single", latency_ms=7.3))
    await SqlRecordStore(engine).write_batch(records)
    rows = await report(engine, "latency")
    assert rows == [
        {
            "model": "m",
            "answered": 100,
            "mean_ms": 50.5,
            "p50_ms": 50.0,
            "p95_ms": 95.0,
            "p99_ms": 99.0,
        },
        {
            "model": "single",
            "answered": 1,
            "mean_ms": 7.3,
            "p50_ms": 7.3,
            "p95_ms": 7.3,
            "p99_ms": 7.3,
        },
    ]


async def test_error_refusal_and_cache_hit_rates_per_model(ledger: AsyncEngine) -> None:
    assert await report(ledger, "model-rates") == [
        {
            "model": "gpt-4o-mini",
            "requests": 5,
            "errors": 3,
            "error_rate": 0.6,
            "answers_checked": 2,
            "refusals": 0,
            "refusal_rate": 0.0,
            # alice's miss and hit, carol's two misses; the rate-limited request never
            # reached the cache.
            "cache_lookups": 4,
            "cache_hits": 1,
            "cache_hit_rate": 0.25,
        },
        {
            "model": "claude-sonnet",
            "requests": 4,
            "errors": 0,
            "error_rate": 0.0,
            "answers_checked": 4,
            "refusals": 1,
            "refusal_rate": 0.25,
            "cache_lookups": 1,  # bypasses are not lookups
            "cache_hits": 0,
            "cache_hit_rate": 0.0,
        },
    ]


async def test_a_rate_with_nothing_to_divide_is_null_not_zero(ledger: AsyncEngine) -> None:
    # globex's requests all bypassed the cache.
    (claude,) = await report(ledger, "model-rates", tenant="globex")
    assert (claude["refusal_rate"], claude["cache_lookups"], claude["cache_hit_rate"]) == (
        0.5,
        0,
        None,
    )


async def test_unchecked_answers_do_not_count_toward_the_refusal_rate(engine: AsyncEngine) -> None:
    await SqlRecordStore(engine).write_batch(
        [
            sample_record(refused=True, cache="hit-semantic"),
            sample_record(refused=False, cache="miss"),
            sample_record(refused=None, cache="miss"),
            sample_record(refused=None, cache=None),
            sample_record(refused=None, status_code=500, error_type="Unexpected", cache="miss"),
        ]
    )
    (row,) = await report(engine, "model-rates")
    assert row["requests"] == 5
    assert (row["errors"], row["error_rate"]) == (1, 0.2)
    assert (row["answers_checked"], row["refusals"], row["refusal_rate"]) == (2, 1, 0.5)
    assert (row["cache_lookups"], row["cache_hits"], row["cache_hit_rate"]) == (4, 1, 0.25)


@pytest.mark.parametrize("name", ["latency", "model-rates"])
async def test_the_window_and_tenant_pick_the_requests(ledger: AsyncEngine, name: str) -> None:
    # 2025-03-02 holds alice's rate-limited request, carol's failures and dave's two.
    rows = await report(ledger, name, since="2025-03-02", tenant="globex")
    assert [row["model"] for row in rows] == ["claude-sonnet"]
    assert await report(ledger, name, since="2025-03-03") == []
