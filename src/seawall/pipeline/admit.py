"""Admission: a working slot in this instance, held until the answer is complete.

A request waits for a slot in priority order and is shed with 503 and Retry-After
when the queue is full or its deadline cannot be met (``resilience.admission``).
A stream keeps its slot until it ends, however it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult, JSONObject, Usage
from seawall.resilience.admission import Admission


class Admit:
    """Holds one admission slot around the rest of the pipeline."""

    name = "admit"

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def wrap(self, call_next: Handler) -> Handler:
        """Wait for a slot (or be shed), run the request, release the slot at the end."""
        admission = self._admission

        async def admit(ctx: RequestContext) -> Reply:
            slot = admission.slot(ctx.priority, ctx.deadline)
            await slot.__aenter__()
            try:
                reply = await call_next(ctx)
            except BaseException as error:
                await slot.__aexit__(type(error), error, error.__traceback__)
                raise
            if isinstance(reply, ChatResult | EmbeddingResult):
                await slot.__aexit__(None, None, None)
                return reply
            return _SlotStream(reply, slot)

        return admit


class _SlotStream:
    """A stream that gives its admission slot back when it ends or is closed."""

    def __init__(self, inner: ChatStream, slot: AbstractAsyncContextManager[None]) -> None:
        self._inner = inner
        self._slot: AbstractAsyncContextManager[None] | None = slot

    @property
    def usage(self) -> Usage:
        """The inner stream's usage."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        try:
            async for chunk in self._inner:
                yield chunk
        finally:
            await self._release()

    async def aclose(self) -> None:
        """Close the inner stream and release the slot."""
        try:
            await self._inner.aclose()
        finally:
            await self._release()

    async def _release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            await slot.__aexit__(None, None, None)
