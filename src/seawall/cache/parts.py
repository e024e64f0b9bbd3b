"""The response cache's parts, built from the settings: store, invalidations and stage."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.cache.embedder import LocalEmbedder
from seawall.cache.invalidation import Invalidations, SqlInvalidations
from seawall.cache.semantic import SemanticCache
from seawall.cache.semantic_share import SharedMessages
from seawall.cache.store import CacheStore, MemoryCacheStore
from seawall.cache.store_redis import RedisCacheStore
from seawall.config.cache import CacheSettings
from seawall.pipeline.cache import ResponseCache
from seawall.resilience.clock import Clock
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_multiplex import MultiplexedRedis


def build_cache(
    settings: CacheSettings, engine: AsyncEngine, redis: MultiplexedRedis | None, clock: Clock
) -> tuple[ResponseCache, SqlInvalidations]:
    """The cache stage (Redis-backed when there is a Redis) and the invalidation table."""
    store: CacheStore
    shared = None
    if redis is not None:
        store = RedisCacheStore(redis, FailOpenGuard("response cache", clock.now))
        guard = FailOpenGuard("semantic cache messages", clock.now)
        shared = SharedMessages(redis, guard, max_entries=settings.semantic.max_entries)
    else:
        store = MemoryCacheStore(
            max_entries=settings.max_entries, max_bytes=settings.max_bytes, now=time.time
        )
    table = SqlInvalidations(engine)
    invalidations = Invalidations(
        table.since, ttl_s=settings.ttl_seconds, refresh_s=settings.invalidation_refresh_seconds
    )
    semantic = None
    if settings.semantic.enabled:
        semantic = SemanticCache(settings.semantic, LocalEmbedder(), shared)
    return ResponseCache(store, invalidations, settings, semantic=semantic), table
