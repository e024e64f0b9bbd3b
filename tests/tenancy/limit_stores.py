"""Client-limit stores for the contract tests, and a private Redis to take away."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.tenancy.client_limits import MemoryClientLimits
from seawall.tenancy.client_limits_redis import RedisClientLimits
from tests.conftest import free_port
from tests.resilience.fake_clock import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix(base: str) -> str:
    """A key prefix under ``base`` of this test's own."""
    return f"{base}test-{secrets.token_hex(6)}:"


async def delete_prefix(prefix: str) -> None:
    """Remove every key a test wrote under ``prefix`` on the shared Redis."""
    connection = RedisConnection(REDIS_URL)
    try:
        async for key in connection.client.scan_iter(match=f"{prefix}*"):
            await connection.client.delete(key)
    finally:
        await connection.aclose()


def redis_store(
    client: Redis, prefix: str, clock: FakeClock | None
) -> tuple[RedisClientLimits, FailOpenGuard]:
    """A Redis store (on ``clock``'s time, or Redis's when None) and the guard it reports to."""
    guard_clock = clock if clock is not None else FakeClock()
    guard = FailOpenGuard("client rate limits", guard_clock.now, retry_seconds=1.0)
    store = RedisClientLimits(
        client,
        fallback=MemoryClientLimits(guard_clock),
        guard=guard,
        prefix=prefix,
        clock=clock,
    )
    return store, guard


class PrivateRedis:
    """A ``redis-server`` of our own on a free port (no persistence), to kill at will."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self._root = root
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Run it and wait until it answers PING."""
        with (self._root / "redis.log").open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._root,
            )
        client = Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except (RedisError, OSError):
                    await asyncio.sleep(0.05)
            raise AssertionError("the private redis-server did not start")
        finally:
            await client.aclose()

    async def kill(self) -> None:
        """Kill it (an outage, not a shutdown) and wait until it is gone."""
        if self._process is None:
            return
        self._process.kill()
        await self._process.wait()
        self._process = None
