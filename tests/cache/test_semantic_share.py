"""Learned messages shared through a Redis stream, and what happens when Redis is down."""

from __future__ import annotations

import asyncio
import secrets

import numpy as np
import pytest

from seawall.cache.semantic_share import SharedMessages
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_keys import CACHE_SEMANTIC
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.ports import free_port
from tests.redis_keyspace import REDIS_URL, delete_prefix


def guard() -> FailOpenGuard:
    return FailOpenGuard("semantic cache messages", asyncio.get_running_loop().time, 60)


async def test_what_one_instance_learns_another_reads_once() -> None:
    stream = f"{CACHE_SEMANTIC}-test-{secrets.token_hex(4)}"
    first, second = MultiplexedRedis(REDIS_URL), MultiplexedRedis(REDIS_URL)
    try:
        writer = SharedMessages(first, guard(), max_entries=100, stream=stream)
        vector = np.arange(384, dtype=np.float32) / 384
        await writer.publish("ctx", "key-1", "What is 2 + 2?", vector)
        await writer.publish("ctx", "key-2", "Name a prime.", vector * 2)
        reader = SharedMessages(second, guard(), max_entries=100, stream=stream)
        learned = await reader.pull()
        assert [(c, k, t) for c, k, t, _ in learned] == [
            ("ctx", "key-1", "What is 2 + 2?"),
            ("ctx", "key-2", "Name a prime."),
        ]
        assert np.array_equal(learned[0][3], vector)
        assert await reader.pull() == []  # read once; only new messages after that
        await writer.publish("ctx", "key-3", "Name a colour.", vector)
        assert [k for _, k, _, _ in await reader.pull()] == ["key-3"]
    finally:
        await first.aclose()
        await second.aclose()
        await delete_prefix(stream)


async def test_with_redis_down_the_instance_keeps_its_own_index(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = MultiplexedRedis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.2)
    down = guard()
    shared = SharedMessages(client, down, max_entries=100)
    try:
        await shared.publish("ctx", "k", "text", np.zeros(384, dtype=np.float32))
        assert await shared.pull() == []
        assert down.down and "semantic cache messages: Redis unavailable" in caplog.text
    finally:
        await client.aclose()
