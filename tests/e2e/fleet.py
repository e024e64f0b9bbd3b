"""A production topology on one machine: nginx in front of three ``seawall serve`` processes
sharing one Redis (the shared one on 6379) and one PostgreSQL database (a private one on
the shared server).

Deployment names carry a random suffix, since Redis keys name the deployment; the
keys are deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import openai
import redis

from tests.databases import POSTGRES_SERVER
from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.instances import Simulator
from tests.e2e.nginx import Nginx, running_nginx
from tests.e2e.processes import ServerProcess, clean_env

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Fleet:
    """The load balancer, the instances behind it, and what they share."""

    nginx: Nginx
    instances: list[ServerProcess]
    database: str
    suffix: str

    def sdk(self, key: str = MASTER_KEY, timeout: float = 30.0) -> openai.OpenAI:
        """The real OpenAI SDK, through the load balancer over TLS, without its own retries."""
        return openai.OpenAI(
            base_url=f"{self.nginx.url}/v1",
            api_key=key,
            max_retries=0,
            http_client=self.nginx.client(timeout),
        )

    def instance_of(self, address: str) -> ServerProcess:
        """The instance at ``address`` (host:port, as the access log names it)."""
        return next(s for s in self.instances if s.url.endswith(f"//{address}"))

    def ledger(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Rows of a query on the shared database."""
        return asyncio.run(_fetch(self.database, query, *args))


async def _fetch(database: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def private_database() -> Iterator[str]:
    """A PostgreSQL database of our own on the shared server, dropped at the end."""
    name = f"seawall_fleet_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def fleet_config(
    data_dir: Path, database: str, suffix: str, primary: Simulator, backup: Simulator
) -> str:
    """One instance's configuration: every instance has the same but for its data_dir.

    ``gpt-4o-mini`` is served by ``backup``; ``guarded`` tries ``primary`` first and
    falls back to ``backup``. Output costs $1,000 per million tokens, so budgets run
    out after a handful of requests.
    """
    return f"""
data_dir: {data_dir}
master_key: {MASTER_KEY}
server: {{grace_seconds: 20}}
stores: {{database_url: "{database}", redis_url: "{SHARED_REDIS}"}}
resilience: {{breaker: {{min_requests: 4, failure_rate: 0.5, open_seconds: 60}}}}
tenancy: {{budget_rules_refresh_seconds: 0.2}}
local_models: false
deployments:
  primary-{suffix}:
    provider: openai
    model: primary-{suffix}
    api_base: {primary.url}/v1
    prices: {{input_per_mtok: 0, output_per_mtok: 1000}}
  backup-{suffix}:
    provider: openai
    model: gpt-4o-mini
    api_base: {backup.url}/v1
    prices: {{input_per_mtok: 0, output_per_mtok: 1000}}
models:
  gpt-4o-mini: [backup-{suffix}]
  guarded: [primary-{suffix}, backup-{suffix}]
"""


@contextlib.contextmanager
def running_fleet(
    root: Path, primary: Simulator, backup: Simulator, size: int = 3
) -> Iterator[Fleet]:
    """``size`` instances behind nginx, each on its own data_dir, for the block."""
    suffix = secrets.token_hex(4)
    shared = redis.Redis.from_url(SHARED_REDIS)
    with private_database() as database:
        instances: list[ServerProcess] = []
        try:
            for index in range(size):
                data_dir = root / f"instance-{index}"
                data_dir.mkdir(parents=True)
                config = data_dir / "seawall.yaml"
                config.write_text(fleet_config(data_dir, database, suffix, primary, backup))
                # One at a time: the first one applies the migrations.
                instances.append(start_seawall(config, data_dir / "serve.log", clean_env()))
            addresses = [server.url.removeprefix("http://") for server in instances]
            with running_nginx(root / "nginx", addresses) as nginx:
                yield Fleet(nginx, instances, database, suffix)
        finally:
            for server in instances:
                if server.process.poll() is None:
                    server.stop()
            keys = list(shared.scan_iter(match=f"seawall:*{suffix}*", count=1000))
            if keys:
                shared.delete(*keys)
            shared.close()
