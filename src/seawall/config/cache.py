"""The ``cache:`` section: response caching."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SemanticSettings:
    """Answers to near-repeats: the last user message by meaning, on the local embedder."""

    enabled: bool = False
    # Cosine similarity a stored message needs to answer (then the near-miss check runs).
    threshold: float = 0.84
    # Conversations with more user messages than this are not answered by meaning.
    max_turns: int = 1
    # Also for requests with a non-zero temperature (that opted into caching).
    any_temperature: bool = False
    # Vectors kept per instance (the oldest go first).
    max_entries: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be more than 0 and at most 1")
        if self.max_turns < 1 or self.max_entries < 1:
            raise ValueError("max_turns and max_entries must be at least 1")


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
    semantic: SemanticSettings = field(default_factory=SemanticSettings)
