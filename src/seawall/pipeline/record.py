"""Recording: every accepted request leaves exactly one request record.

The stage wraps everything after authentication, so failures (bad input,
unknown model, upstream errors) are recorded as well as answers. Records go to
a sink that never blocks (the batched writer in ``stores.record_writer``).
Streams are recorded when they end: completed, failed mid-way, abandoned by the
client (status 499, as proxies log it), or cut at the end of a shutdown's grace
period (503, ``ShutDownMidway``).

Every record carries the request's cost, from the deployment that answered and its
usage (the usage so far, for a stream that ended early). A non-streaming answer also
tells the client its cost in ``x-seawall-cost-usd``; a stream's headers are sent
before its usage is known, so its cost is on the record only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from seawall.errors import SeawallError, ShutDownMidway
from seawall.monitoring.answer import Answer, AnswerCollector, Observer, answer_of
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult, JSONObject, Usage
from seawall.stores.records import RequestRecord
from seawall.tenancy.costs import PriceBook, format_usd

CLIENT_CLOSED = 499

logger = logging.getLogger(__name__)


class RecordSink(Protocol):
    """Where finished records go; ``submit`` must not block."""

    def submit(self, record: RequestRecord) -> None:
        """Accept one record for durable storage."""
        ...


def build_record(ctx: RequestContext) -> RequestRecord:
    """The request record for a finished request."""
    deployment = ctx.deployment
    usage = ctx.usage or Usage()
    principal = ctx.principal
    return RequestRecord(
        request_id=ctx.request_id,
        created_at=ctx.received_at,
        operation=ctx.operation,
        protocol=ctx.protocol,
        public_model=ctx.public_model.name if ctx.public_model else _claimed_model(ctx),
        deployment=deployment.name if deployment else None,
        provider=deployment.provider if deployment else None,
        upstream_model=deployment.model if deployment else None,
        stream=ctx.stream,
        status_code=ctx.status_code,
        error_type=ctx.error_type,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        usage_estimated=usage.estimated,
        latency_ms=ctx.elapsed_ms(),
        ttfb_ms=(ctx.first_byte_at - ctx.started) * 1000.0 if ctx.first_byte_at else None,
        attempts=",".join(ctx.attempts) or None,
        correlation_id=ctx.identity.correlation_id,
        user=ctx.end_user(),
        session_id=ctx.identity.session_id,
        feature=ctx.identity.feature,
        tenant_id=principal.tenant_id if principal else None,
        key_id=principal.key_id if principal else None,
        client_ip=ctx.identity.client_ip,
        cost_usd=ctx.cost_usd,
        route_decision=ctx.route_decision,
        cache=ctx.cache,
    )


def _claimed_model(ctx: RequestContext) -> str | None:
    model = ctx.body.get("model")
    return model[:200] if isinstance(model, str) else None


@dataclass(slots=True)
class Stopping:
    """Set by ``http.drain`` when the shutdown grace period is over: a request cancelled
    from then on was cut by the shutdown, not left by its client."""

    past_grace: bool = False


class Finisher:
    """Builds a finished request's record, tells the observers, then submits it."""

    __slots__ = ("observers", "sink", "stopping")

    def __init__(
        self, sink: RecordSink, observers: Sequence[Observer] = (), stopping: Stopping | None = None
    ) -> None:
        self.sink = sink
        self.observers = tuple(observers)
        self.stopping = stopping or Stopping()

    def fail(self, ctx: RequestContext, error: BaseException) -> None:
        """Mark the context as failed with the status the client sees."""
        if isinstance(error, asyncio.CancelledError) and self.stopping.past_grace:
            error = ShutDownMidway(
                "This Seawall instance shut down before the answer finished; retry."
            )
        if isinstance(error, SeawallError):
            ctx.status_code = error.status
            ctx.error_type = type(error).__name__
        elif isinstance(error, asyncio.CancelledError):
            # The client left: its handler was cancelled.
            ctx.status_code = CLIENT_CLOSED
            ctx.error_type = "ClientClosedRequest"
        else:
            ctx.status_code = 500
            ctx.error_type = type(error).__name__

    def finish(self, ctx: RequestContext, answer: Answer | None = None) -> None:
        """Record ``ctx``; an observer's bug is logged and never costs the record."""
        record = build_record(ctx)
        for observer in self.observers:
            try:
                observer.finished(ctx, record, answer)
            except Exception:
                logger.exception("%s failed on request %s", type(observer).__name__, ctx.request_id)
        self.sink.submit(record)


class Record:
    """Submits one record per request, whatever happened to it, and tells the observers."""

    name = "record"

    def __init__(
        self,
        sink: RecordSink,
        prices: PriceBook,
        observers: Sequence[Observer] = (),
        stopping: Stopping | None = None,
    ) -> None:
        self._finisher = Finisher(sink, observers, stopping)
        self._prices = prices

    def wrap(self, call_next: Handler) -> Handler:
        """Record failures at once and answers when they are complete."""
        finisher = self._finisher
        prices = self._prices

        async def record(ctx: RequestContext) -> Reply:
            try:
                reply = await call_next(ctx)
            except BaseException as error:
                finisher.fail(ctx, error)
                finisher.finish(ctx)
                raise
            if not isinstance(reply, ChatResult | EmbeddingResult):
                return RecordedStream(reply, ctx, finisher, prices)
            ctx.usage = reply.usage
            ctx.first_byte_at = time.perf_counter()
            _charge(ctx, prices)
            ctx.response_headers["x-seawall-cost-usd"] = format_usd(ctx.cost_usd)
            looked_at = finisher.observers and isinstance(reply, ChatResult)
            finisher.finish(ctx, answer_of(reply.body) if looked_at else None)
            return reply

        return record


def _charge(ctx: RequestContext, prices: PriceBook) -> None:
    """Put the cost of the answering deployment's usage on the context."""
    if ctx.deployment is not None and ctx.usage is not None:
        ctx.cost_usd = prices.cost_usd(ctx.deployment.name, ctx.usage)


class RecordedStream:
    """A stream that records its request when it ends, however it ends."""

    def __init__(
        self, inner: ChatStream, ctx: RequestContext, finisher: Finisher, prices: PriceBook
    ) -> None:
        self._inner = inner
        self._ctx = ctx
        self._finisher = finisher
        self._prices = prices
        # The answer is gathered only when someone looks at it.
        self._answer = AnswerCollector() if finisher.observers else None
        self._chunks: AsyncIterator[JSONObject] | None = None
        self._done = False
        self.usage = inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        ctx = self._ctx
        chunks = self._chunks = aiter(self._inner)
        collector = self._answer
        try:
            async for chunk in chunks:
                if ctx.first_byte_at is None:
                    ctx.first_byte_at = time.perf_counter()
                if collector is not None:
                    collector.add(chunk)
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            await self.aclose()
            raise
        except BaseException as error:
            self._finisher.fail(ctx, error)
            self._finish()
            raise
        self._finish()

    async def aclose(self) -> None:
        """Stop early (client gone: 499; cut by the shutdown: 503): release upstream, record."""
        try:
            # Closing the upstream first runs its cleanup, which counts the usage so
            # far: the record of an abandoned stream then bills what was generated.
            chunks = self._chunks
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
            await self._inner.aclose()
        finally:
            self._abandon()

    def _abandon(self) -> None:
        if not self._done:
            self._finisher.fail(self._ctx, asyncio.CancelledError())
            self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.usage = self._inner.usage
        self._ctx.usage = self.usage
        _charge(self._ctx, self._prices)
        collector = self._answer
        self._finisher.finish(self._ctx, collector.answer() if collector is not None else None)
