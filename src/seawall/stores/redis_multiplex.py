"""A lean Redis client for the request path: one connection, every call pipelined.

The shared stores (client limits, budgets, breakers, provider rate budgets) make a
few small Lua calls per request. Through redis-py's asyncio client each costs about
0.2 ms of CPU on a small VM (pool checkout, retry wrapper, health checks, parsing),
more than the rest of Seawall's own work on a request; this client costs about a
sixth of that:

* one connection per process, multiplexed: commands are written back to back and
  replies matched first-in first-out (Redis answers in order), so concurrent
  requests never wait for a free connection;
* commands issued in the same event-loop turn go out in one write, and commands
  from work off the response path (``deferred``: settlements, outcome reports) wait
  for the next write, or ``DEFER_SECONDS`` at most, instead of costing one of their own;
* replies are parsed by hiredis;
* scripts run by EVALSHA, and by EVAL once after a NOSCRIPT (a restarted or flushed
  Redis), which loads them again.

Errors are redis-py's, so the stores' failure policies need no second vocabulary:
``ConnectionError`` when the connection cannot be made or is lost (every call in
flight on it fails at once; the next call connects again), ``TimeoutError`` when the
oldest call waits longer than ``socket_timeout_s`` (the connection is then dropped:
a late reply would answer the wrong call), ``ResponseError`` for an error reply.
Nothing is retried here: a script that mutates state must not run twice, and each
store knows what to do instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from seawall.stores.redis_endpoint import Endpoint

Arg = str | bytes | int | float

# The longest a deferred command waits for another write to go out with.
DEFER_SECONDS = 0.02

_deferred: ContextVar[bool] = ContextVar("seawall_redis_deferred", default=False)


@contextmanager
def deferred() -> Iterator[None]:
    """Tasks created inside send their commands with the next write (``DEFER_SECONDS`` at most).

    For work nobody waits for: its commands ride along with the next request's
    instead of paying a write, a wake-up and a read of their own.
    """
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


class Script:
    """A Lua script bound to a client; ``await script(keys, args)`` runs it."""

    def __init__(self, client: MultiplexedRedis, text: str) -> None:
        self._client = client
        self._text = text
        self._sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        """Run the script on ``keys`` with ``args``; its reply, bytes left undecoded."""
        try:
            return await self._client.execute("EVALSHA", self._sha, len(keys), *keys, *args)
        except ResponseError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        # EVAL runs the script and caches it, so the next EVALSHA finds it.
        return await self._client.execute("EVAL", self._text, len(keys), *keys, *args)


class _Link(asyncio.Protocol):
    """One connection: the replies it reads go to the calls it sent, in order."""

    def __init__(self, on_lost: Any) -> None:
        self.transport: asyncio.Transport | None = None
        # (future, deadline) per call written and not yet answered, oldest first.
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self.waiting
        while True:
            try:
                reply = self._reader.gets()
            except InvalidResponse as error:
                self.fail(RedisConnectionError(f"Redis sent a malformed reply: {error}"))
                return
            if reply is False:
                return
            if not waiting:
                self.fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            future, _ = waiting.popleft()
            if not future.done():  # a cancelled caller still had its reply read
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(
            RedisConnectionError(f"lost the connection to Redis ({exc or 'closed by server'})")
        )

    def fail(self, error: Exception) -> None:
        """Fail every call in flight and close the connection."""
        self._on_lost(self)
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class MultiplexedRedis:
    """Runs commands on one pipelined connection, made on first use and after a loss."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 1.0,
        socket_timeout_s: float = 1.0,
        client_name: str = "seawall",
    ) -> None:
        self.endpoint = Endpoint.from_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._socket_timeout_s = socket_timeout_s
        self._client_name = client_name
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._deferred_flush: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    def register_script(self, text: str) -> Script:
        """A script to run on this client (redis-py's ``register_script``, leaner)."""
        return Script(self, text)

    async def execute(self, *command: Arg) -> Any:
        """Send one command and wait for its reply."""
        link = self._link
        if link is None:
            link = await self._connect()
        return await self._send(link, command)

    def _send(self, link: _Link, command: Sequence[Arg]) -> asyncio.Future[Any]:
        """Queue ``command`` on ``link``; the future of its reply."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        link.waiting.append((future, loop.time() + self._socket_timeout_s))
        self._pending.append(hiredis.pack_command(tuple(command)))  # type: ignore[arg-type]
        if _deferred.get():
            if not self._flush_scheduled and self._deferred_flush is None:
                self._deferred_flush = loop.call_later(DEFER_SECONDS, self._flush)
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._socket_timeout_s, self._watch)
        return future

    async def hget(self, key: str, field: str) -> bytes | None:
        """One hash field, or None."""
        value: bytes | None = await self.execute("HGET", key, field)
        return value

    async def aclose(self) -> None:
        """Close the connection; calls still in flight fail with ``ConnectionError``."""
        self._closed = True
        if self._link is not None:
            self._link.fail(RedisConnectionError("the Redis client was closed"))

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._deferred_flush is not None:
            self._deferred_flush.cancel()
            self._deferred_flush = None
        if not self._pending:
            return
        # Whatever is pending was queued on the current link: a lost link's are dropped.
        link, data, self._pending = self._link, b"".join(self._pending), []
        if link is not None and link.transport is not None and not link.transport.is_closing():
            link.transport.write(data)

    def _watch(self) -> None:
        """Drop the connection when its oldest call has waited past the socket timeout."""
        self._watchdog = None
        link = self._link
        if link is None or not link.waiting:
            return
        loop = asyncio.get_running_loop()
        deadline = link.waiting[0][1]
        if loop.time() >= deadline:
            link.fail(
                RedisTimeoutError(f"Redis did not answer within {self._socket_timeout_s:g} s")
            )
            return
        self._watchdog = loop.call_at(deadline, self._watch)

    def _lost(self, link: _Link) -> None:
        if self._link is link:
            self._link = None
            self._pending.clear()

    async def _connect(self) -> _Link:
        if self._closed:
            raise RedisConnectionError("the Redis client was closed")
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            self._connecting = loop.create_future()
            task = loop.create_task(self._open())
            task.add_done_callback(self._opened)
        # Shielded: one caller giving up must not abort the connection the others wait on.
        return await asyncio.shield(self._connecting)

    def _opened(self, task: asyncio.Task[_Link]) -> None:
        connecting, self._connecting = self._connecting, None
        assert connecting is not None
        if task.cancelled():
            connecting.set_exception(RedisConnectionError("connecting to Redis was cancelled"))
        elif (error := task.exception()) is not None:
            connecting.set_exception(error)
        elif self._closed:  # closed while connecting: the new connection goes too
            error = RedisConnectionError("the Redis client was closed")
            task.result().fail(error)
            connecting.set_exception(error)
        else:
            self._link = task.result()
            connecting.set_result(self._link)
        connecting.exception()  # retrieved: nobody may be waiting any more

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                if ep.path is not None:
                    _, link = await loop.create_unix_connection(lambda: _Link(self._lost), ep.path)
                else:
                    context = ssl.create_default_context() if ep.tls else None
                    _, link = await loop.create_connection(
                        lambda: _Link(self._lost), ep.host, ep.port, ssl=context
                    )
                # Queued before the link is shared, so they precede every other command.
                self._link = link
                await asyncio.gather(*[self._send(link, c) for c in self._handshake()])
        except (TimeoutError, RedisTimeoutError) as error:
            message = f"timed out connecting to Redis at {self._where()}"
            self._drop(RedisConnectionError(message))
            raise RedisConnectionError(message) from error
        except OSError as error:
            message = f"cannot connect to Redis at {self._where()}: {error}"
            raise RedisConnectionError(message) from error
        except ResponseError as error:
            self._drop(RedisConnectionError("Redis refused the connection set-up"))
            raise RedisConnectionError(f"Redis refused the connection set-up: {error}") from error
        return link

    def _drop(self, error: Exception) -> None:
        if self._link is not None:
            self._link.fail(error)

    def _handshake(self) -> list[tuple[Arg, ...]]:
        ep = self.endpoint
        commands: list[tuple[Arg, ...]] = []
        if ep.password is not None:
            user: tuple[Arg, ...] = (ep.username,) if ep.username else ()
            commands.append(("AUTH", *user, ep.password))
        if ep.db:
            commands.append(("SELECT", ep.db))
        commands.append(("CLIENT", "SETNAME", self._client_name))
        return commands

    def _where(self) -> str:
        ep = self.endpoint
        return ep.path or f"{ep.host}:{ep.port}"
