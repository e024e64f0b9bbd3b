"""Deferred Redis commands: work off the response path rides along with the next write.

Settlements and outcome reports run in ``Background`` tasks, whose commands wait for
another command to go out with (or ``DEFER_SECONDS``), so they cost no write of
their own; nothing they send is lost, and they go out in the order they were made.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import redis

from seawall.pipeline.background import Background
from seawall.stores import redis_keys, redis_multiplex
from seawall.stores.redis_multiplex import MultiplexedRedis, deferred
from tests.redis_keyspace import REDIS_URL, delete_prefix


@pytest.fixture
async def key() -> AsyncIterator[str]:
    """A key of this test's own on the shared Redis, deleted after it."""
    prefix = f"{redis_keys.PREFIX}test-{secrets.token_hex(6)}:"
    yield f"{prefix}k"
    await delete_prefix(prefix)


def stored(key: str) -> bytes | None:
    """The value as another client sees it now."""
    with redis.Redis.from_url(REDIS_URL) as client:
        value: bytes | None = client.get(key)
        return value


async def test_a_deferred_command_goes_out_with_the_next_one(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long deferral, so that only the next command can have sent it.
    monkeypatch.setattr(redis_multiplex, "DEFER_SECONDS", 30.0)
    client = MultiplexedRedis(REDIS_URL)
    try:
        await client.execute("PING")  # connected
        with deferred():
            task = asyncio.get_running_loop().create_task(client.execute("SET", key, b"v"))
        for _ in range(3):
            await asyncio.sleep(0)
        assert stored(key) is None
        assert not task.done()

        async with asyncio.timeout(5):
            assert await client.execute("GET", key) == b"v"  # sent behind the SET
            assert await task == b"OK"
    finally:
        await client.aclose()


async def test_a_deferred_command_alone_goes_out_soon(key: str) -> None:
    client = MultiplexedRedis(REDIS_URL)
    background = Background()
    try:

        async def settle() -> None:
            await client.execute("SET", key, b"settled")

        background.run(settle())
        async with asyncio.timeout(5):  # a hang guard: DEFER_SECONDS is 0.02 s
            await background.drain()
        assert stored(key) == b"settled"
    finally:
        await client.aclose()


async def test_deferred_commands_are_all_sent_in_their_own_order(key: str) -> None:
    client = MultiplexedRedis(REDIS_URL)
    background = Background()
    try:

        async def append(part: str) -> None:
            await client.execute("APPEND", key, part)

        for i in range(20):
            if i % 2:
                background.run(append(str(i % 10)))
            else:
                await client.execute("APPEND", key, str(i % 10))
        await background.drain()
        value = (stored(key) or b"").decode()
        assert sorted(value) == sorted("01234567890123456789")  # nothing lost
        assert [c for c in value if int(c) % 2] == list("1357913579")
    finally:
        await client.aclose()
