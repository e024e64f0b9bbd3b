"""The ``cache:`` section: response caching."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """How answers are cached. The backend is Redis when ``stores.redis_url`` is set."""

    enabled: bool = True
    # How long an answer is kept.
    ttl_seconds: float = 3600.0
    # Bounds of the in-process store (the embedded default); Redis has its own maxmemory.
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    # Cache only requests that ask for a repeatable answer (temperature 0 or a seed);
    # others are cached when they send Cache-Control: max-age=N.
    deterministic_only: bool = True
    # Share entries between tenants (off: each tenant has its own cache).
    shared_across_tenants: bool = False
    # How often each instance reloads invalidations made elsewhere.
    invalidation_refresh_seconds: float = 2.0
