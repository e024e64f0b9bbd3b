"""Reading a request body under the configured size limit."""

from __future__ import annotations

from starlette.types import Receive

from seawall.errors import BodyTooLarge, ClientDisconnected
from seawall.http.incoming import HeaderLookup


def _too_large(size: int, limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"The request body is {'over ' if size > limit else ''}{size} bytes; this Seawall "
        f"accepts at most {limit} bytes (server.max_body_bytes). Send less, or split the "
        "work into several requests."
    )


async def read_body(headers: HeaderLookup, receive: Receive, limit: int) -> bytes:
    """The whole body from the ASGI channel, or ``BodyTooLarge`` once it exceeds ``limit``."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("The client disconnected while sending the request body.")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
