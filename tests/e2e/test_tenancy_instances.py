"""Two Seawall processes share client rate limits and budgets through Redis and PostgreSQL.

Both instances use the shared Redis and a PostgreSQL database of this module's own;
keys and budgets are created through one instance's admin API and enforced by both.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
import redis

from tests.databases import POSTGRES_SERVER
from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.processes import ServerProcess, clean_env

REDIS_URL = "redis://127.0.0.1:6379/0"
# $1,000 per million output tokens: a 20-token answer costs at most $0.02.
MAX_TOKENS = 20
MAX_RESERVATION_USD = MAX_TOKENS * 1000 / 1_000_000
HELLO = [{"role": "user", "content": "Tell me a long story about the sea."}]


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _create_database(name: str) -> None:
    admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"seawall_e2e_{secrets.token_hex(6)}"
    _run(_create_database(name))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        _run(_drop_database(name))


@pytest.fixture(scope="module")
def instances(
    simulator: str, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            data_dir = tmp_path_factory.mktemp(f"instance-{name}")
            config = data_dir / "seawall.yaml"
            config.write_text(_config(simulator, database, data_dir))
            env = clean_env(TEST_MASTER_KEY=MASTER_KEY)
            # One at a time: the first applies the migrations.
            started.append(start_seawall(config, data_dir / "serve.log", env))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def _config(simulator: str, database: str, data_dir: Path) -> str:
    return f"""
data_dir: {data_dir}
master_key: ${{TEST_MASTER_KEY}}
stores: {{database_url: "{database}", redis_url: "{REDIS_URL}"}}
resilience: {{max_attempts: 1, breaker: {{min_requests: 1000000}}}}
tenancy: {{budget_rules_refresh_seconds: 0.2}}
local_models: false
deployments:
  sim-gpt:
    provider: openai
    model: gpt-4o-mini
    api_base: {simulator}/v1
    api_key: sim-key
    prices: {{input_per_mtok: 0, output_per_mtok: 1000}}
models:
  gpt-4o-mini: [sim-gpt]
"""


@pytest.fixture
def tenant() -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"seawall:*{name}*"):
        client.delete(key)
    client.close()


def _admin(server: ServerProcess, method: str, path: str, **body: Any) -> Any:
    answer = httpx.request(
        method,
        f"{server.url}{path}",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json=body or None,
        timeout=10,
    )
    assert answer.status_code < 300, answer.text
    return answer.json()


def _ask(server: ServerProcess, key: str, retries: int = 0) -> tuple[int, dict[str, str], str]:
    """One chat request with the real SDK; status, headers and error code of its answer."""
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=retries)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=HELLO, max_tokens=MAX_TOKENS
        )
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        return error.status_code, dict(error.response.headers), str(body.get("code"))
    return 200, dict(raw.headers), ""


async def _ledger(database: str, tenant: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database)
    try:
        return await connection.fetch(
            "SELECT status_code, cost_usd FROM requests WHERE tenant_id = $1", tenant
        )
    finally:
        await connection.close()


def _wait_for_ledger(database: str, tenant: str, count: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = []
    for _ in range(100):
        rows = _run(_ledger(database, tenant))
        if len(rows) >= count:
            return rows
        _run(asyncio.sleep(0.1))
    raise AssertionError(f"{len(rows)} of {count} records arrived")


def test_a_keys_request_limit_holds_across_both_instances(
    instances: tuple[ServerProcess, ServerProcess], tenant: str
) -> None:
    a, b = instances
    key = _admin(a, "POST", "/admin/keys", tenant=tenant, name="limited", rpm=6)["key"]

    answers = [_ask(a if i % 2 == 0 else b, key) for i in range(12)]

    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 6 and statuses.count(429) == 6, statuses
    served_headers = [headers for status, headers, _ in answers if status == 200]
    assert [h["x-ratelimit-remaining-requests"] for h in served_headers] == [
        "5", "4", "3", "2", "1", "0"
    ]  # fmt: skip
    for status, headers, _ in answers:
        assert headers["x-ratelimit-limit-requests"] == "6"
        if status == 429:
            assert int(headers["retry-after"]) >= 1
            assert headers["x-ratelimit-reset-requests"].endswith("s")


def test_a_tenant_budget_holds_across_both_instances_under_concurrency(
    instances: tuple[ServerProcess, ServerProcess], database: str, tenant: str
) -> None:
    a, b = instances
    hard = 5 * MAX_RESERVATION_USD
    _admin(a, "POST", "/admin/budgets", scope="tenant", subject=tenant, period="daily",
           hard_usd=hard)  # fmt: skip
    key = _admin(b, "POST", "/admin/keys", tenant=tenant, name="spender")["key"]
    _run(asyncio.sleep(0.5))  # both instances reload their budget rules

    with ThreadPoolExecutor(max_workers=16) as pool:
        # The SDKs may retry (twice, their default): a spent budget must tell them not to.
        answers = list(pool.map(lambda i: _ask(a if i % 2 else b, key, 2), range(40)))

    statuses = [status for status, _, _ in answers]
    refused = [(status, headers, code) for status, headers, code in answers if status != 200]
    assert statuses.count(200) >= 5 and refused
    for status, headers, code in refused:
        assert (status, code) == (429, "insufficient_quota")
        assert headers["x-should-retry"] == "false"
    # One ledger row per client call: the SDKs did not retry a spent budget.
    rows = _wait_for_ledger(database, tenant, len(answers))
    assert len(rows) == len(answers)
    spent = sum(row["cost_usd"] for row in rows)
    assert spent <= hard + MAX_RESERVATION_USD + 1e-9
    budgets = _admin(a, "GET", f"/admin/budgets?scope=tenant&subject={tenant}")["data"]
    assert budgets[0]["spent_usd"] == pytest.approx(spent, abs=1e-9)
