"""One Redis client per process, shared by the Redis-backed stores.

Timeouts are short on purpose: the stores that use Redis (limits, budgets, breakers,
cache) sit on the request path and must fail fast so that their own policy (fail
open or closed) decides, instead of a request hanging on a dead socket. The client
is ``MultiplexedRedis``: one pipelined connection, which every concurrent request
shares (``redis_multiplex`` says why).
"""

from __future__ import annotations

import asyncio

from seawall.errors import ServiceUnavailable
from seawall.stores.redis_multiplex import MultiplexedRedis


class RedisConnection:
    """A ``MultiplexedRedis`` built from a URL with Seawall's timeouts; ``client`` is it."""

    def __init__(
        self, url: str, *, connect_timeout_s: float = 1.0, socket_timeout_s: float = 1.0
    ) -> None:
        self.url = url
        # Values are bytes: each store decides how to decode.
        self.client = MultiplexedRedis(
            url, connect_timeout_s=connect_timeout_s, socket_timeout_s=socket_timeout_s
        )
        self._ping_timeout_s = connect_timeout_s + socket_timeout_s + 0.5

    async def ping(self) -> None:
        """Raise ``ServiceUnavailable`` unless Redis answers PING."""
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                await self.client.execute("PING")
        # Any failure means "not ready": refused, timed out, auth, wrong protocol.
        except Exception as exc:
            raise ServiceUnavailable(f"redis is unreachable ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        """Close the client's connection."""
        await self.client.aclose()
