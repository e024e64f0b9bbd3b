"""Reading a request body under the configured size limit."""

from __future__ import annotations

from starlette.requests import Request

from seawall.errors import BodyTooLarge


def _too_large(size: int, limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"The request body is {'over ' if size > limit else ''}{size} bytes; this Seawall "
        f"accepts at most {limit} bytes (server.max_body_bytes). Send less, or split the "
        "work into several requests."
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ``BodyTooLarge`` as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)
