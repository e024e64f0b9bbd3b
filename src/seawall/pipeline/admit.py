"""Admission: a working slot in this instance, held until the answer is complete.

A request waits for a slot in priority order and is shed with 503 and Retry-After
when the queue is full or its deadline cannot be met (``resilience.admission``).
A stream keeps its slot until it ends, however it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from seawall.errors import Overloaded
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.pipeline.rejections import RejectionLog
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult, JSONObject, Usage
from seawall.resilience.admission import Admission


class Admit:
    """Holds one admission slot around the rest of the pipeline."""

    name = "admit"

    def __init__(self, admission: Admission, rejections: RejectionLog) -> None:
        self._admission = admission
        self._rejections = rejections

    def wrap(self, call_next: Handler) -> Handler:
        """Wait for a slot (or be shed), run the request, release the slot at the end."""
        admission = self._admission
        rejections = self._rejections
        now = admission.clock.now

        async def admit(ctx: RequestContext) -> Reply:
            asked_at = now()
            try:
                taken_at = await admission.acquire(ctx.priority, ctx.deadline)
            except Overloaded as shed:
                rejections.note(shed)
                raise
            ctx.queue_wait_s = taken_at - asked_at
            try:
                reply = await call_next(ctx)
            except BaseException:
                admission.release(taken_at)
                raise
            if isinstance(reply, ChatResult | EmbeddingResult):
                admission.release(taken_at)
                return reply
            return _SlotStream(reply, admission, taken_at)

        return admit


class _SlotStream:
    """A stream that gives its admission slot back when it ends or is closed."""

    def __init__(self, inner: ChatStream, admission: Admission, taken_at: float) -> None:
        self._inner = inner
        self._admission: Admission | None = admission
        self._taken_at = taken_at

    @property
    def usage(self) -> Usage:
        """The inner stream's usage."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        try:
            async for chunk in self._inner:
                yield chunk
        finally:
            self._release()

    async def aclose(self) -> None:
        """Close the inner stream and release the slot."""
        try:
            await self._inner.aclose()
        finally:
            self._release()

    def _release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission.release(self._taken_at)
