"""How an answer reaches the client: pacing, streaming and the connection-level faults.

Wire modules decide what the bytes are; this module decides when they are sent
and whether the connection survives. A reset is a real TCP RST (``SO_LINGER``
0, then abort), which an ASGI server could not produce.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
from collections.abc import Mapping, Sequence

from aiohttp import web

from seawall.simulator.faults import Fault, FaultKind

# An SSE event and the tokens it carries (its share of the tokens/s pacing).
Event = tuple[bytes, int]

_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
# How often a hanging request checks whether its client is still there.
_HANG_POLL_SECONDS = 0.1
_FLUSH_POLL_SECONDS = 0.005
_FLUSH_ATTEMPTS = 200


async def pause(seconds: float) -> None:
    """Sleep, but never touch the timer when there is nothing to wait for."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def reset_connection(request: web.BaseRequest) -> None:
    """Drop the client's TCP connection with a RST, whatever was sent so far."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    transport.abort()


def dropped() -> web.Response:
    """The handler's return value once the connection is gone (never written)."""
    return web.Response()


async def hold(request: web.BaseRequest, fault: Fault | None, delay_seconds: float) -> bool:
    """Wait before the headers as the profile and fault say; False if the connection was cut."""
    if fault is not None:
        if fault.kind is FaultKind.RESET_BEFORE_FIRST_BYTE:
            reset_connection(request)
            return False
        if fault.kind is FaultKind.HANG:
            await _hang(request, fault.seconds)
            reset_connection(request)
            return False
        if fault.kind is FaultKind.SLOW:
            delay_seconds += fault.slow_seconds
    await pause(delay_seconds)
    return True


async def send_body(
    request: web.BaseRequest, body: bytes, fault: Fault | None, headers: Mapping[str, str]
) -> web.StreamResponse:
    """Send a complete JSON body, or the broken version a fault asks for."""
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.MALFORMED_JSON:
        return web.Response(
            body=body[: len(body) // 2], content_type="application/json", headers=headers
        )
    if kind is FaultKind.RESET_MID_STREAM:
        response = web.StreamResponse(headers=headers)
        response.content_type = "application/json"
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        await _reset_after_flush(request)
        return response
    return web.Response(body=body, content_type="application/json", headers=headers)


async def send_events(
    request: web.BaseRequest,
    events: Sequence[Event],
    fault: Fault | None,
    *,
    ttft_seconds: float,
    tokens_per_second: float,
    malformed: bytes,
    headers: Mapping[str, str],
) -> web.StreamResponse:
    """Stream SSE events paced by time to first token and tokens/s, or broken by a fault."""
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.MALFORMED_JSON:
        middle = max(1, len(events) // 2)
        events = [*events[:middle], (malformed, 0), *events[middle:]]
    # A mid-stream reset keeps the first half, at least one event, never all of them.
    cutoff = max(1, len(events) // 2) if kind is FaultKind.RESET_MID_STREAM else len(events)
    response = web.StreamResponse(headers=headers)
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    await pause(ttft_seconds)
    if tokens_per_second <= 0:
        await response.write(b"".join(event for event, _ in events[:cutoff]))
    else:
        for index, (event, tokens) in enumerate(events[:cutoff]):
            if index and tokens:
                await asyncio.sleep(tokens / tokens_per_second)
            await response.write(event)
    if cutoff < len(events):
        await _reset_after_flush(request)
        return response
    await response.write_eof()
    return response


async def _hang(request: web.BaseRequest, seconds: float | None) -> None:
    loop = asyncio.get_running_loop()
    deadline = math.inf if seconds is None else loop.time() + seconds
    # Polling, so a hang ends when its client leaves even if the server does not cancel it.
    while (transport := request.transport) is not None and not transport.is_closing():
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(_HANG_POLL_SECONDS, left))


async def _reset_after_flush(request: web.BaseRequest) -> None:
    # A RST discards what is still queued here, so let the sent part leave first.
    transport = request.transport
    for _ in range(_FLUSH_ATTEMPTS):
        if transport is None or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(_FLUSH_POLL_SECONDS)
    reset_connection(request)
