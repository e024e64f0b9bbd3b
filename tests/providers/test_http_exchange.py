"""Non-streaming upstream calls over pooled keep-alive connections, against real sockets."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from seawall.config.schema import Deployment, Timeouts
from seawall.errors import UpstreamError, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from seawall.providers.http_exchange import MAX_IDLE_PER_ORIGIN, ExchangePool, Target
from seawall.providers.http_transport import HttpTransport
from seawall.providers.openai_compat import map_error
from tests.ports import free_port

# What the server does with one request on a connection: write an answer, or not.
Reply = Callable[[asyncio.StreamWriter, bytes], Awaitable[None]]


@dataclass
class RawServer:
    """A TCP server answering each request with the next scripted reply (the last repeats)."""

    replies: list[Reply]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
                await reply(writer, request)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> Reply:
    async def reply(writer: asyncio.StreamWriter, request: bytes) -> None:
        head = "".join(f"{h}\r\n" for h in headers)
        if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body)
        await writer.drain()

    return reply


def then_close(reply: Reply) -> Reply:
    async def closing(writer: asyncio.StreamWriter, request: bytes) -> None:
        await reply(writer, request)
        writer.close()

    return closing


def first_byte_of_100(*, then_close: bool) -> Reply:
    """Headers promising 100 bytes, one byte of body, then a close or a long silence."""

    async def reply(writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await asyncio.sleep(5)

    return reply


async def silence(writer: asyncio.StreamWriter, request: bytes) -> None:
    await asyncio.sleep(5)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(*replies: Reply) -> RawServer:
        raw = RawServer(list(replies))
        port = free_port()
        servers.append(await asyncio.start_server(raw.handle, "127.0.0.1", port))
        raw.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return raw

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    transport = HttpTransport()
    yield transport
    await transport.aclose()


def upstream(**timeouts: float) -> Deployment:
    phases = Timeouts(**{"connect": 1, "first_byte": 1, "between_chunks": 1, **timeouts})
    return Deployment(name="raw", provider="openai", model="m", timeouts=phases)


async def post(transport: HttpTransport, server: RawServer, **timeouts: float) -> bytes:
    return await transport.exchange(
        upstream(**timeouts), server.url, {"Authorization": "Bearer k"}, b'{"x": 1}', map_error
    )


async def test_a_request_carries_host_length_and_headers_and_reuses_its_connection(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    server = await serve(answer(b'{"ok": true}'))
    for _ in range(3):
        assert await post(transport, server) == b'{"ok": true}'
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nContent-Length: 8\r\n" in first
    assert b"\r\nAuthorization: Bearer k\r\n" in first and first.endswith(b'{"x": 1}')


async def test_chunked_gzip_and_unframed_bodies_arrive_whole(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    chunked = await serve(
        answer(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "Transfer-Encoding: chunked")
    )
    assert await post(transport, chunked) == b"hello world"
    zipped = await serve(answer(gzip.compress(b'{"a": 1}'), "Content-Encoding: gzip"))
    assert await post(transport, zipped) == b'{"a": 1}'
    # Neither a length nor chunks: the body ends where the connection does.
    unframed = await serve(then_close(_unframed(b"until the end")))
    assert await post(transport, unframed) == b"until the end"


def _unframed(body: bytes) -> Reply:
    async def reply(writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()

    return reply


async def test_a_connection_the_server_closed_is_not_reused(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    server = await serve(then_close(answer(b"{}")))
    assert await post(transport, server) == b"{}"
    await asyncio.sleep(0.05)  # the close reaches the client while its connection is idle
    assert await post(transport, server) == b"{}"
    assert server.connections == 2


async def test_error_statuses_go_to_the_providers_mapper(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    limited = answer(
        b'{"error": {"message": "slow down", "type": "requests"}}',
        "Retry-After: 7",
        status="429 Too Many Requests",
    )
    server = await serve(limited)
    with pytest.raises(UpstreamRateLimited, match="slow down") as caught:
        await post(transport, server)
    assert caught.value.retry_after == 7


async def test_silence_before_the_headers_is_a_first_byte_timeout(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    server = await serve(silence)
    with pytest.raises(UpstreamTimeout, match="response headers"):
        await post(transport, server, first_byte=0.2)


async def test_silence_in_the_middle_of_a_body_is_a_timeout(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    server = await serve(first_byte_of_100(then_close=False))
    with pytest.raises(UpstreamTimeout, match="response body"):
        await post(transport, server, between_chunks=0.2)


async def test_a_body_cut_short_or_garbled_is_an_upstream_error(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    with pytest.raises(UpstreamError, match="closed the connection"):
        await post(transport, await serve(first_byte_of_100(then_close=True)))

    async def garbled(writer: asyncio.StreamWriter, request: bytes) -> None:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    with pytest.raises(UpstreamError, match="not valid HTTP"):
        await post(transport, await serve(garbled))


async def test_nothing_listening_is_unavailable(transport: HttpTransport) -> None:
    nowhere = RawServer([], url=f"http://127.0.0.1:{free_port()}/v1/chat/completions")
    with pytest.raises(UpstreamUnavailable, match="Could not connect"):
        await post(transport, nowhere)


async def test_a_cancelled_exchange_never_hands_its_connection_to_the_next_request(
    serve: Callable[..., Awaitable[RawServer]], transport: HttpTransport
) -> None:
    async def slow(writer: asyncio.StreamWriter, request: bytes) -> None:
        await asyncio.sleep(0.3)
        await answer(b'"late"')(writer, request)

    server = await serve(slow, answer(b'"fresh"'))
    call = asyncio.ensure_future(post(transport, server))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    # The late answer to the cancelled request must not be read as this one's.
    assert await post(transport, server) == b'"fresh"'
    assert server.connections == 2


async def test_concurrent_requests_each_get_a_connection_and_idle_ones_are_capped(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    async def slow(writer: asyncio.StreamWriter, request: bytes) -> None:
        await asyncio.sleep(0.05)
        await answer(request.partition(b"\r\n\r\n")[2])(writer, request)

    server = await serve(slow)
    pool = ExchangePool()
    target = Target.parse(server.url)
    count = MAX_IDLE_PER_ORIGIN + 6
    bodies = [f'{{"i":{i:03}}}'.encode() for i in range(count)]
    answers = await asyncio.gather(
        *(
            pool.post(target, {}, body, connect_timeout=1, head_timeout=1, body_timeout=1)
            for body in bodies
        )
    )
    assert [a.body for a in answers] == bodies
    assert server.connections == count
    assert sum(len(idle) for idle in pool._idle.values()) == MAX_IDLE_PER_ORIGIN
    pool.close()


def test_targets_keep_the_query_and_name_the_port_only_when_needed() -> None:
    assert Target.parse("https://api.example.com/v1/chat?api-version=2").path == (
        "/v1/chat?api-version=2"
    )
    assert Target.parse("https://api.example.com/v1").host_header == "api.example.com"
    assert Target.parse("http://10.0.0.5:8000/v1").host_header == "10.0.0.5:8000"
    with pytest.raises(ValueError, match="http"):
        Target.parse("ftp://example.com/")
