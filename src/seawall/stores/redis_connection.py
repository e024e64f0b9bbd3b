"""One Redis client per process, shared by the Redis-backed stores.

Timeouts are short and retries few on purpose: the stores that use Redis (limits,
breakers, cache) sit on the request path and must fail fast so that their own policy
(fail open or closed) decides, instead of a request hanging on a dead socket.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from seawall.errors import ServiceUnavailable


class RedisConnection:
    """A ``redis.asyncio.Redis`` built from a URL with Seawall's timeouts; ``client`` is it."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 1.0,
        socket_timeout_s: float = 1.0,
        health_check_interval_s: int = 15,
        retries: int = 1,
        max_connections: int = 100,
    ) -> None:
        self.url = url
        # A call finding every connection busy waits for one (up to a connect and a
        # socket timeout) instead of failing at once: a burst of concurrent requests
        # must not pass for a Redis outage.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=connect_timeout_s + socket_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
            # PING a connection idle this long before reusing it, to catch dead sockets.
            health_check_interval=health_check_interval_s,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.25, base=0.01), retries),
            client_name="seawall",
        )
        # Values are bytes (decode_responses off): each store decides how to encode.
        self.client: Redis = Redis.from_pool(pool)  # closing the client closes the pool
        # Enough for every attempt the retry policy allows, and no more.
        self._ping_timeout_s = (retries + 1) * (connect_timeout_s + socket_timeout_s) + 0.5

    async def ping(self) -> None:
        """Raise ``ServiceUnavailable`` unless Redis answers PING."""
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                await self.client.ping()
        # Any failure means "not ready": refused, timed out, auth, wrong protocol.
        except Exception as exc:
            raise ServiceUnavailable(f"redis is unreachable ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        await self.client.aclose()
