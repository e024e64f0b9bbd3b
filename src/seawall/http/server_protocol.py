"""uvicorn's httptools protocol, sending a response's head together with its first bytes.

uvicorn writes a response's status line and headers as soon as the app starts
the response, and the body in a second write: two system calls and two TCP
segments, so the client is woken twice for a small JSON answer, which costs
measurably on a small VM (docs/performance.md). ``CoalescingTransport`` holds a
write until the next write or the end of the current event-loop turn, whichever
comes first, and sends the two together. The bytes on the wire are the same;
nothing waits longer than the turn it was written in, and a streamed answer
still leaves chunk by chunk as the upstream produces it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn imports the protocol from this string in every worker process.
PROTOCOL = "seawall.http.server_protocol:CoalescingHttpToolsProtocol"


class CoalescingTransport(asyncio.Transport):
    """A transport that sends each write together with the next one of the same turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._release_scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send what is held with ``data``, or hold ``data`` until the next write or turn end."""
        if self._held is not None:
            held, self._held = self._held, None
            self._send(held + data)
            return
        self._held = bytes(data)
        if not self._release_scheduled:
            self._release_scheduled = True
            self._loop.call_soon(self._release)

    def writelines(self, list_of_data: Any) -> None:
        """Write every item, in order."""
        for data in list_of_data:
            self.write(data)

    def _release(self) -> None:
        self._release_scheduled = False
        self._flush()

    def _flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._send(held)

    def _send(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Send what is held, then close."""
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held = None
        self._transport.abort()

    def write_eof(self) -> None:
        """Send what is held, then half-close."""
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the underlying transport can half-close."""
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        """Whether the underlying transport is closing or closed."""
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The underlying transport's extra information (socket, peername, ...)."""
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """Stop receiving (flow control)."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """Receive again."""
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        """Whether the transport is receiving."""
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the connection to another protocol (an upgrade)."""
        self._flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The protocol the underlying transport delivers to."""
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        """Bytes held here and queued in the underlying transport."""
        held = len(self._held) if self._held is not None else 0
        return held + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The underlying transport's flow-control limits."""
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the underlying transport's flow-control limits."""
        self._transport.set_write_buffer_limits(high, low)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
