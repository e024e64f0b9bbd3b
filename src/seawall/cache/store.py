"""Where cached answers live: the store contract and the embedded, in-process store.

An entry is a complete ``chat.completion`` body with when it was stored, whose it is
(scope tenant and public model, for invalidation) and the request fields it answers
(for ``seawall cache warm``, which replays the most requested ones). Stores count
hits per entry, so warming knows which entries are the most requested. Stores are shared by every
request of a process; the Redis store (``store_redis``) shares them across instances.

``MemoryCacheStore`` is bounded twice: by entry count and by the bytes of the
answers it holds, evicting the least recently used first; an entry past its TTL is
never returned and is dropped when met.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached answer."""

    body: dict[str, Any]
    stored_at: float
    tenant: str | None
    model: str
    # The request's output-affecting fields (what the key was made of).
    request: dict[str, Any] | None = None

    def encode(self) -> bytes:
        """The entry as stored bytes."""
        fields = {"b": self.body, "t": self.stored_at, "n": self.tenant, "m": self.model}
        return orjson.dumps({**fields, "r": self.request})

    @classmethod
    def decode(cls, data: bytes) -> CacheEntry:
        """An entry from ``encode``'s bytes."""
        raw = orjson.loads(data)
        return cls(raw["b"], raw["t"], raw["n"], raw["m"], raw.get("r"))


class CacheStore(Protocol):
    """Cached answers by key; both implementations pass the same contract tests."""

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry under ``key``, or None."""
        ...

    async def put(self, key: str, entry: CacheEntry, ttl_s: float) -> None:
        """Keep ``entry`` under ``key`` for ``ttl_s`` seconds (replacing any entry there)."""
        ...

    async def clear(self) -> int:
        """Drop every entry; how many were dropped (where the store can tell)."""
        ...

    async def hit(self, key: str, entry: CacheEntry) -> None:
        """Count one request answered by the entry under ``key``."""
        ...

    async def top(self, model: str, limit: int) -> list[CacheEntry]:
        """Up to ``limit`` live entries of ``model`` that answered most often, most first."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryCacheStore:
    """``CacheStore`` in this process: LRU-bounded by entries and bytes, with TTLs."""

    def __init__(self, *, max_entries: int, max_bytes: int, now: Callable[[], float]) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._now = now
        # key -> (expires_at, size, entry), least recently used first; hits by key.
        self._entries: OrderedDict[str, tuple[float, int, CacheEntry]] = OrderedDict()
        self._hits: dict[str, int] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry under ``key``, or None; a hit becomes the most recently used."""
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, _, entry = found
        if self._now() >= expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def put(self, key: str, entry: CacheEntry, ttl_s: float) -> None:
        """Keep ``entry``; evict the least recently used while over a bound."""
        # The size of the answer as it would be stored elsewhere: what the bound means.
        size = len(entry.encode())
        if size > self._max_bytes:
            return
        hits = self._hits.get(key)  # a refreshed answer stays as popular as it was
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._now() + ttl_s, size, entry)
        self.bytes += size
        if hits:
            self._hits[key] = hits
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    async def clear(self) -> int:
        """Drop every entry."""
        dropped = len(self._entries)
        self._entries.clear()
        self._hits.clear()
        self.bytes = 0
        return dropped

    async def hit(self, key: str, entry: CacheEntry) -> None:
        """Count one hit (entries only: a hit on an evicted key counts for nothing)."""
        if key in self._entries:
            self._hits[key] = self._hits.get(key, 0) + 1

    async def top(self, model: str, limit: int) -> list[CacheEntry]:
        """The live entries of ``model`` with the most hits."""
        now = self._now()
        found = [
            (self._hits.get(key, 0), entry)
            for key, (expires_at, _, entry) in self._entries.items()
            if entry.model == model and now < expires_at
        ]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [entry for _, entry in found[:limit]]

    def _drop(self, key: str) -> None:
        _, size, _ = self._entries.pop(key)
        self._hits.pop(key, None)
        self.bytes -= size

    async def aclose(self) -> None:
        """Nothing to release."""
