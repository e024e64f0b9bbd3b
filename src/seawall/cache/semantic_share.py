"""The semantic cache's messages shared between instances through a Redis stream.

Each instance searches its own in-process index (``semantic_index``); what one
instance learns it appends to the stream ``CACHE_SEMANTIC`` (context, exact key,
message, vector as float32 bytes), and every instance reads what it has not seen
before each semantic lookup (one XREAD, usually empty) and once at start-up (the
whole stream: a new instance starts warm). The stream is trimmed to about
``max_entries`` messages, the size of each index. An entry's answer itself lives in
the shared cache store, so a message learned from another instance answers only
while its entry is there.

Failure mode: fails open, to this instance's own index. While Redis is down,
messages are neither published nor read (the shared store misses meanwhile anyway);
afterwards reading resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seawall.cache.embedder import Vector
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import CACHE_SEMANTIC
from seawall.stores.redis_multiplex import MultiplexedRedis

# Messages read per XREAD.
_PAGE = 1000

Learned = tuple[str, str, str, Vector]


class SharedMessages:
    """Publishes learned messages to Redis and reads the ones other instances learned."""

    def __init__(
        self,
        client: MultiplexedRedis,
        guard: FailOpenGuard,
        *,
        max_entries: int,
        stream: str = CACHE_SEMANTIC,
    ) -> None:
        self._client = client
        self._guard = guard
        self._max_entries = max_entries
        self._stream = stream
        self._last_id: bytes = b"0"

    async def publish(self, context: str, key: str, text: str, vector: Vector) -> None:
        """Append one learned message (nothing while Redis is unavailable)."""
        if not self._guard.use_redis():
            return
        fields = ("c", context, "k", key, "t", text, "v", vector.astype("<f4").tobytes())
        trim = ("MAXLEN", "~", self._max_entries)
        try:
            await self._client.execute("XADD", self._stream, *trim, "*", *fields)
        except REDIS_FAILURES as error:
            self._guard.failed(error)
            return
        self._guard.succeeded()

    async def pull(self) -> list[Learned]:
        """Every message appended since the last pull (none while Redis is unavailable)."""
        learned: list[Learned] = []
        while self._guard.use_redis():
            try:
                reply = await self._client.execute(
                    "XREAD", "COUNT", _PAGE, "STREAMS", self._stream, self._last_id
                )
            except REDIS_FAILURES as error:
                self._guard.failed(error)
                break
            self._guard.succeeded()
            entries = reply[0][1] if reply else []
            for entry_id, flat in entries:
                self._last_id = entry_id
                message = _message(flat)
                if message is not None:
                    learned.append(message)
            if len(entries) < _PAGE:
                break
        return learned


def _message(flat: list[Any]) -> Learned | None:
    """A stream entry's fields as (context, key, text, vector); None if malformed."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    try:
        vector = np.frombuffer(fields[b"v"], dtype="<f4").astype(np.float32)
        return fields[b"c"].decode(), fields[b"k"].decode(), fields[b"t"].decode(), vector
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
