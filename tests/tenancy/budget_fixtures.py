"""Fixtures for budget tests: a Redis key prefix, a Redis client, a private Redis.

Test modules import the fixtures they use (the SQL databases come from tests/conftest.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from seawall.stores.redis_keys import BUDGET

REDIS_URL = "redis://127.0.0.1:6379/0"


async def delete_prefix(client: Redis, prefix: str) -> None:
    """Remove every key under ``prefix``."""
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)


@pytest.fixture
async def budget_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own, emptied after it."""
    prefix = f"{BUDGET}test-{secrets.token_hex(6)}:"
    yield prefix
    client = blocking_client()
    try:
        await delete_prefix(client, prefix)
    finally:
        await client.aclose()


def blocking_client(url: str = REDIS_URL) -> Redis:
    """A Redis client whose pool makes a call wait for a free connection.

    200 concurrent requests need more connections than a pool of 100; redis-py's
    default pool fails the extra calls at once (``MaxConnectionsError``) instead.
    """
    return Redis(
        connection_pool=BlockingConnectionPool.from_url(url, max_connections=100, timeout=5)
    )


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A client of the shared Redis, as one Seawall instance has."""
    client = blocking_client()
    yield client
    await client.aclose()
