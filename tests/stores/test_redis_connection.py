"""Redis: the shared client answers, and fails fast when Redis is gone."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from seawall.errors import ServiceUnavailable
from seawall.stores import redis_keys
from seawall.stores.redis_connection import RedisConnection
from tests.ports import free_port


async def test_ping_and_commands_work_against_the_real_redis() -> None:
    redis = RedisConnection("redis://127.0.0.1:6379/0")
    key = f"{redis_keys.PREFIX}test:{secrets.token_hex(8)}"
    try:
        await redis.ping()
        assert await redis.client.execute("SET", key, b"value", "EX", 10) == b"OK"
        assert await redis.client.execute("GET", key) == b"value"
    finally:
        await redis.client.execute("DEL", key)
        await redis.aclose()


async def test_ping_raises_promptly_when_nothing_listens() -> None:
    redis = RedisConnection(f"redis://127.0.0.1:{free_port()}/0")
    try:
        # A generous bound: this guards against hanging on retries, it is not a speed test.
        async with asyncio.timeout(5):
            with pytest.raises(ServiceUnavailable, match="redis"):
                await redis.ping()
    finally:
        await redis.aclose()
