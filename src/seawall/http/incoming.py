"""What a serving endpoint reads of a request: its id, headers, peer and body channel.

The serving endpoints run as raw ASGI apps (``serving_app``), without Starlette's
request object: its header lookups decode and scan the whole header list on every
call, and a request asks for about ten headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from starlette.types import Receive, Scope


class HeaderLookup(Protocol):
    """Case-insensitive header lookup: ``RequestHeaders`` or Starlette's ``Headers``."""

    def get(self, key: str, /) -> str | None:
        """The header's value (the first, if repeated), or None."""
        ...


class RequestHeaders:
    """A request's headers by name, indexed once; the first value wins, as in Starlette."""

    __slots__ = ("_values",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        # ASGI servers give header names in lower case. Reversed, so that for a
        # repeated header the first value is the one that stays in the dict.
        self._values = dict(reversed(list(raw)))

    def get(self, key: str, /) -> str | None:
        """The header's value, or None; ``key`` in any case."""
        value = self._values.get(key.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")


@dataclass(slots=True, frozen=True)
class Incoming:
    """One request to a serving endpoint, before its body is read."""

    request_id: str
    headers: RequestHeaders
    peer: str | None
    receive: Receive

    @classmethod
    def of(cls, scope: Scope, receive: Receive, request_id: str) -> Incoming:
        """The request an ASGI ``scope`` describes."""
        client = scope.get("client")
        return cls(
            request_id=request_id,
            headers=RequestHeaders(scope["headers"]),
            peer=client[0] if client else None,
            receive=receive,
        )
