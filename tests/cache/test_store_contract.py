"""The same contract for the in-process store and the Redis store; each one's own bounds."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from seawall.cache.store import CacheEntry, CacheStore, MemoryCacheStore
from seawall.cache.store_redis import RedisCacheStore
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_keys import CACHE, CACHE_HITS
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.ports import free_port
from tests.redis_keyspace import REDIS_URL, delete_prefix, keyspace


def entry(
    text: str = "Paris.", *, stored_at: float = 1_000.0, tenant: str | None = "t1"
) -> CacheEntry:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    return CacheEntry(body, stored_at, tenant, "gpt-4o-mini")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryCacheStore(
            max_entries=100, max_bytes=1 << 20, now=asyncio.get_running_loop().time
        )
        return
    prefix = f"{CACHE}test-{secrets.token_hex(4)}:"
    hits = f"{CACHE_HITS}test-{secrets.token_hex(4)}:"
    client = MultiplexedRedis(REDIS_URL)
    guard = FailOpenGuard("response cache", asyncio.get_running_loop().time)
    try:
        yield RedisCacheStore(client, guard, prefix=prefix, hits_prefix=hits)
    finally:
        await client.aclose()
        await delete_prefix(prefix)
        await delete_prefix(hits)


async def test_an_entry_comes_back_as_it_was_put(store: CacheStore) -> None:
    assert await store.get("k") is None
    await store.put("k", entry(), ttl_s=60)
    assert await store.get("k") == entry()
    assert await store.get("other") is None


async def test_putting_again_replaces_the_entry(store: CacheStore) -> None:
    await store.put("k", entry("Paris."), ttl_s=60)
    await store.put("k", entry("Lyon."), ttl_s=60)
    found = await store.get("k")
    assert found is not None and found.body["choices"][0]["message"]["content"] == "Lyon."


async def test_an_entry_expires_with_its_ttl(store: CacheStore) -> None:
    await store.put("short", entry(), ttl_s=0.05)
    await store.put("long", entry(), ttl_s=60)
    await asyncio.sleep(0.1)
    assert await store.get("short") is None
    assert await store.get("long") is not None


async def test_top_lists_the_most_requested_live_entries_of_a_model(store: CacheStore) -> None:
    for key, hits in (("rare", 1), ("popular", 3), ("never", 0)):
        await store.put(key, entry(key), ttl_s=60)
        for _ in range(hits):
            await store.hit(key, entry(key))
    await store.put("gone", entry("gone"), ttl_s=0.05)
    for _ in range(5):
        await store.hit("gone", entry("gone"))
    await asyncio.sleep(0.1)
    texts = [e.body["choices"][0]["message"]["content"] for e in await store.top("gpt-4o-mini", 2)]
    assert texts == ["popular", "rare"]
    # A refreshed answer (no-cache, an expired max-age) keeps its popularity.
    await store.put("popular", entry("popular, refreshed"), ttl_s=60)
    top = await store.top("gpt-4o-mini", 1)
    assert top[0].body["choices"][0]["message"]["content"] == "popular, refreshed"
    assert await store.top("another-model", 5) == []


async def test_clear_drops_everything(store: CacheStore) -> None:
    for key in ("a", "b", "c"):
        await store.put(key, entry(), ttl_s=60)
    assert await store.clear() == 3
    assert [await store.get(key) for key in ("a", "b", "c")] == [None, None, None]


async def test_memory_store_evicts_the_least_recently_used_beyond_its_entry_bound() -> None:
    store = MemoryCacheStore(max_entries=2, max_bytes=1 << 20, now=lambda: 0.0)
    await store.put("a", entry(), ttl_s=60)
    await store.put("b", entry(), ttl_s=60)
    assert await store.get("a") is not None  # "a" is now the most recently used
    await store.put("c", entry(), ttl_s=60)
    assert [await store.get(k) is not None for k in ("a", "b", "c")] == [True, False, True]
    assert len(store) == 2


async def test_memory_store_stays_within_its_byte_bound() -> None:
    size = len(entry("x" * 1000).encode())
    store = MemoryCacheStore(max_entries=100, max_bytes=3 * size, now=lambda: 0.0)
    for key in "abcde":
        await store.put(key, entry("x" * 1000), ttl_s=60)
    assert store.bytes <= 3 * size and len(store) == 3
    # An answer larger than the whole bound is not kept (and evicts nothing).
    await store.put("huge", entry("y" * 10 * size), ttl_s=60)
    assert await store.get("huge") is None and len(store) == 3


async def test_redis_entries_carry_their_ttl() -> None:
    prefix = f"{CACHE}test-{secrets.token_hex(4)}:"
    client = MultiplexedRedis(REDIS_URL)
    store = RedisCacheStore(client, FailOpenGuard("response cache", lambda: 0.0), prefix=prefix)
    inspect = keyspace()
    try:
        await store.put("k", entry(), ttl_s=30)
        assert 29_000 < await inspect.pttl(prefix + "k") <= 30_000
        # Bytes that are not an entry (another writer, a different version) are a miss.
        await inspect.set(prefix + "junk", b"not json")
        assert await store.get("junk") is None
    finally:
        await client.aclose()
        await inspect.aclose()
        await delete_prefix(prefix)


async def test_redis_store_fails_open_to_no_cache_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on this port: every call fails the way a lost Redis does.
    client = MultiplexedRedis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.2)
    guard = FailOpenGuard("response cache", asyncio.get_running_loop().time, retry_seconds=60)
    store = RedisCacheStore(client, guard)
    try:
        await store.put("k", entry(), ttl_s=60)  # no error: the answer is just not kept
        assert await store.get("k") is None  # a miss: the request goes upstream
        assert guard.down and guard.outages == 1
        assert "response cache: Redis unavailable" in caplog.text
    finally:
        await client.aclose()
