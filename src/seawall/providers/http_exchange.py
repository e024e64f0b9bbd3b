"""One HTTP/1.1 request and its whole answer, over pooled keep-alive connections.

Non-streaming upstream calls (a chat completion, embeddings) need no more than this:
send a POST, read the status, headers and body. aiohttp's general client spent about
a third of Seawall's CPU on such a call (redirects, cookies, tracing, proxies, its
request and response objects; docs/performance.md); this one writes the request in
one piece and parses the answer with httptools, the parser uvicorn uses. Streams
still go through aiohttp (``http_transport``).

Failures surface as ``ExchangeFailed`` with the phase they happened in; the caller
(``HttpTransport.exchange``) maps them, and timeouts, to Seawall's upstream errors.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

# Idle connections kept per origin, and how long one may sit idle before it is closed.
MAX_IDLE_PER_ORIGIN = 64
IDLE_SECONDS = 30.0
# Headers that delimit a body; without either, it ends when the connection closes.
_FRAMING = (b"content-length", b"transfer-encoding")


class ExchangeFailed(Exception):
    """The connection failed: ``phase`` is "connection", "response headers" or "response body"."""

    def __init__(self, phase: str, reason: str) -> None:
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


class ExchangeTimedOut(ExchangeFailed):
    """Nothing arrived in time: ``phase`` is "connection", "response headers" or "response body"."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase, f"timed out waiting for the {phase}")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points: its origin and the request line's target."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """``url`` split once (http and https only)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, path)

    @property
    def host_header(self) -> str:
        """The Host header: the port only where it is not the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete HTTP response."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; serves one exchange at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head: asyncio.Future[None] | None = None
        self._done: asyncio.Future[bool] | None = None
        self._in_body = False
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail("the upstream's answer is not valid HTTP/1.1", exc)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        done = self._done
        if (
            exc is None
            and self._in_body
            and done is not None
            and not done.done()
            and self._unframed()
        ):
            # Neither a length nor chunks: the body ends where the connection does.
            done.set_result(False)
            return
        self._fail("the upstream closed the connection", exc)

    def _unframed(self) -> bool:
        return not any(name.lower() in _FRAMING for name, _ in self._headers)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_body = True
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(self._parser.should_keep_alive())

    # the exchange

    async def exchange(self, request: bytes, head_timeout: float, body_timeout: float) -> Answer:
        """Send ``request``; the whole answer (raises ``ExchangeFailed``, ``TimeoutError``)."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        self._headers, self._body, self._in_body = [], [], False
        head, done = self._head, self._done = loop.create_future(), loop.create_future()
        self._transport.write(request)
        try:
            try:
                async with asyncio.timeout(head_timeout):
                    await head
            except TimeoutError:
                raise ExchangeTimedOut("response headers") from None
            if not done.done():
                try:
                    async with asyncio.timeout(body_timeout):
                        await done
                except TimeoutError:
                    raise ExchangeTimedOut("response body") from None
            keep = done.result()
        finally:
            # Whatever happens to the connection from now on is no exchange's concern.
            self._head = self._done = None
        if not keep:
            self.close()
        status = self._parser.get_status_code()
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._headers]
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        return Answer(status, headers, body)

    def _fail(self, reason: str, exc: BaseException | None) -> None:
        detail = f"{reason} ({type(exc).__name__})" if exc is not None else reason
        waiter = self._head if self._head is not None and not self._head.done() else self._done
        if waiter is not None and not waiter.done():
            phase = "response headers" if waiter is self._head else "response body"
            waiter.set_exception(ExchangeFailed(phase, detail))
        if self._transport is not None and not self.closed:
            self._transport.close()

    def close(self) -> None:
        """Close the connection (a half-done exchange on it fails)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()


class ExchangePool:
    """Keep-alive connections per origin; any number in use, up to 64 idle per origin."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(
        self,
        target: Target,
        headers: dict[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        head_timeout: float,
        body_timeout: float,
    ) -> Answer:
        """POST ``body``; the whole answer. A connection is reused only after a clean answer."""
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n{lines}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        connection = self._take(target) or await self._connect(target, connect_timeout)
        try:
            answer = await connection.exchange(request, head_timeout, body_timeout)
        except BaseException:
            # Timed out, cancelled or broken: the connection's state is unknown.
            connection.close()
            raise
        if not connection.closed:
            self._give_back(target, connection)
        return _decoded(answer)

    def _take(self, target: Target) -> _Connection | None:
        idle = self._idle.get((target.scheme, target.host, target.port))
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    def _give_back(self, target: Target, connection: _Connection) -> None:
        idle = self._idle.setdefault((target.scheme, target.host, target.port), deque())
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(self, target: Target, limit: float) -> _Connection:
        tls = None
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limit):
                _, connection = await loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls is not None else None,
                )
        except TimeoutError:
            raise ExchangeTimedOut("connection") from None
        except OSError as exc:
            raise ExchangeFailed("connection", str(exc) or type(exc).__name__) from None
        return connection

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _decoded(answer: Answer) -> Answer:
    """The answer with a gzip or deflate body decompressed (none is asked for; some send it)."""
    for name, value in answer.headers:
        if name.lower() == "content-encoding" and value.strip().lower() in ("gzip", "deflate"):
            # wbits 47 accepts both zlib and gzip framing; raw deflate needs -15.
            try:
                body = zlib.decompress(answer.body, 47)
            except zlib.error:
                body = zlib.decompress(answer.body, -15)
            return Answer(answer.status, answer.headers, body)
    return answer
