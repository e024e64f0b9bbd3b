"""What the serving endpoints read of a request: headers once, the body under its limit."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from starlette.types import Message, Receive

from seawall.errors import BodyTooLarge, ClientDisconnected
from seawall.http.body import read_body
from seawall.http.incoming import Incoming, RequestHeaders


def channel(messages: Sequence[Message]) -> Receive:
    """An ASGI receive channel that delivers ``messages`` in order."""
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return receive


def test_header_lookup_ignores_case_and_keeps_the_first_of_repeated_headers() -> None:
    headers = RequestHeaders(
        [(b"x-forwarded-for", b"198.51.100.7"), (b"authorization", b"Bearer k"),
         (b"x-forwarded-for", b"203.0.113.9")]
    )  # fmt: skip
    assert headers.get("X-Forwarded-For") == "198.51.100.7"
    assert headers.get("authorization") == "Bearer k"
    assert headers.get("x-api-key") is None


def test_a_request_names_its_peer_when_the_server_knows_it() -> None:
    scope = {"type": "http", "headers": [(b"x-seawall-user", b"alice")], "client": ("10.0.0.2", 5)}
    incoming = Incoming.of(scope, channel([]), "req_1")
    assert incoming.peer == "10.0.0.2"
    assert incoming.headers.get("x-seawall-user") == "alice"
    assert Incoming.of({**scope, "client": None}, channel([]), "req_2").peer is None


async def test_a_body_in_several_chunks_is_joined() -> None:
    receive = channel(
        [{"type": "http.request", "body": b'{"a":', "more_body": True},
         {"type": "http.request", "body": b" 1}", "more_body": False}]
    )  # fmt: skip
    assert await read_body(RequestHeaders([]), receive, 100) == b'{"a": 1}'


async def test_a_body_over_the_limit_is_refused_even_without_a_declared_length() -> None:
    receive = channel([{"type": "http.request", "body": b"x" * 60, "more_body": True}] * 2)
    with pytest.raises(BodyTooLarge, match="at most 100 bytes"):
        await read_body(RequestHeaders([]), receive, 100)


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(BodyTooLarge, match="5000 bytes"):
        await read_body(RequestHeaders([(b"content-length", b"5000")]), channel([]), 100)


async def test_a_client_leaving_mid_body_is_a_disconnect_not_a_server_error() -> None:
    receive = channel(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    with pytest.raises(ClientDisconnected):
        await read_body(RequestHeaders([]), receive, 100)
