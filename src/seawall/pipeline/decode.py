"""Decoding: the raw body becomes the canonical (OpenAI-shaped) request, once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from seawall.config.schema import Operation
from seawall.pipeline.context import Protocol, RequestContext
from seawall.pipeline.pipeline import Handler, Reply

Decoder = Callable[[bytes], dict[str, Any]]


class Decode:
    """Parses and validates the body with the decoder for the client's wire format."""

    name = "decode"

    def __init__(self, decoders: Mapping[tuple[Protocol, Operation], Decoder]) -> None:
        self._decoders = dict(decoders)

    def wrap(self, call_next: Handler) -> Handler:
        """Fill ``ctx.body`` and ``ctx.stream``, or raise ``InvalidRequest``."""
        decoders = self._decoders

        async def decode(ctx: RequestContext) -> Reply:
            body = decoders[(ctx.protocol, ctx.operation)](ctx.raw_body)
            ctx.body = body
            ctx.stream = body.get("stream") is True
            return await call_next(ctx)

        return decode
