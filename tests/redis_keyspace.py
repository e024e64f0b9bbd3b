"""What tests see of the shared Redis: a redis-py client to inspect keys, and cleanup.

Seawall's stores talk to Redis through ``MultiplexedRedis``; tests look at what they
stored (keys, TTLs, fields) and clear it with redis-py, which has every command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def keyspace(url: str = REDIS_URL) -> Redis:
    """A redis-py client for looking at (and clearing) what a test wrote."""
    return Redis.from_url(url)


async def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Remove every key under ``prefix``."""
    client = keyspace(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
async def inspect_redis() -> AsyncIterator[Redis]:
    """A redis-py client of the shared Redis, to look at what a test's stores wrote."""
    client = keyspace()
    yield client
    await client.aclose()
