"""Cached answers shared by every instance through Redis.

Failure mode: fails open, to no cache. While Redis is unavailable a lookup is a
miss and an answer is not kept: every request is answered upstream, correctly, at
the usual cost, instead of failing. The guard keeps requests off a dead Redis for a
second at a time, so an outage costs one failed call per second, not one per request.

Each entry is one string ``<CACHE><key>`` holding ``CacheEntry.encode()``, expiring
with its TTL (Redis evicts by its own ``maxmemory-policy`` when it is full). Hits are
counted per public model in a sorted set ``<CACHE_HITS><model>`` (member: the key),
which expires a week after its last hit; ``top`` reads it and skips entries gone.
"""

from __future__ import annotations

import orjson

from seawall.cache.store import CacheEntry
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import CACHE, CACHE_HITS
from seawall.stores.redis_multiplex import MultiplexedRedis

# Keys deleted per SCAN page when clearing.
_SCAN_COUNT = 500
# A model's hit counts go a week after its last hit.
_HITS_TTL_S = 7 * 86400


class RedisCacheStore:
    """``CacheStore`` in Redis; a miss while Redis is down."""

    def __init__(
        self,
        client: MultiplexedRedis,
        guard: FailOpenGuard,
        prefix: str = CACHE,
        hits_prefix: str = CACHE_HITS,
    ) -> None:
        self._client = client
        self._guard = guard
        self._prefix = prefix
        self._hits_prefix = hits_prefix

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry under ``key``; None when absent or Redis is unavailable."""
        if not self._guard.use_redis():
            return None
        try:
            data = await self._client.execute("GET", self._prefix + key)
        except REDIS_FAILURES as error:
            self._guard.failed(error)
            return None
        self._guard.succeeded()
        if data is None:
            return None
        try:
            return CacheEntry.decode(data)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None  # not an entry this Seawall wrote: a miss, overwritten by the answer

    async def put(self, key: str, entry: CacheEntry, ttl_s: float) -> None:
        """Keep ``entry`` for ``ttl_s`` seconds; nothing when Redis is unavailable."""
        if not self._guard.use_redis():
            return
        expiry = ("PX", max(1, round(ttl_s * 1000)))
        try:
            await self._client.execute("SET", self._prefix + key, entry.encode(), *expiry)
        except REDIS_FAILURES as error:
            self._guard.failed(error)
            return
        self._guard.succeeded()

    async def clear(self) -> int:
        """Delete every cached answer (SCAN and DEL, a page at a time)."""
        dropped, cursor = 0, b"0"
        while True:
            cursor, keys = await self._client.execute(
                "SCAN", cursor, "MATCH", self._prefix + "*", "COUNT", _SCAN_COUNT
            )
            if keys:
                dropped += await self._client.execute("DEL", *keys)
            if cursor in (b"0", 0, "0"):
                return int(dropped)

    async def hit(self, key: str, entry: CacheEntry) -> None:
        """Count one hit in the model's sorted set (nothing while Redis is unavailable)."""
        if not self._guard.use_redis():
            return
        hits = self._hits_prefix + entry.model
        try:
            await self._client.execute("ZINCRBY", hits, 1, key)
            await self._client.execute("EXPIRE", hits, _HITS_TTL_S)
        except REDIS_FAILURES as error:
            self._guard.failed(error)
            return
        self._guard.succeeded()

    async def top(self, model: str, limit: int) -> list[CacheEntry]:
        """The live entries of ``model`` with the most hits."""
        keys = await self._client.execute(
            "ZREVRANGE", self._hits_prefix + model, 0, max(0, 2 * limit - 1)
        )
        if not keys:
            return []
        values = await self._client.execute("MGET", *[self._prefix + k.decode() for k in keys])
        found = []
        for data in values:
            if data is not None:
                try:
                    found.append(CacheEntry.decode(data))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
        return found[:limit]

    async def aclose(self) -> None:
        """The connection belongs to the gateway's Redis client."""
