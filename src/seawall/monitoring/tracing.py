"""OpenTelemetry traces of finished requests, exported over OTLP/HTTP.

Spans are made after the fact. The request context notes when each upstream
attempt began and ended (two clock reads); when the request is finished (a stream
when it ends) the Record stage tells ``RequestTracer``, which creates the request's
SERVER span and one CLIENT span per attempt with those times. So the request path
does no tracing work, a client that disconnects leaves no span open, and without
an endpoint no OpenTelemetry object exists (``parts.build_tracer`` imports this
module only when one is configured). The price: span ids exist only once the request
is over, so Seawall continues a caller's ``traceparent`` but sends none upstream.

Names and attributes follow the OpenTelemetry GenAI semantic conventions. The
Anthropic Messages API is a ``chat`` operation there (``seawall.protocol`` tells
the wire formats apart). No prompt or answer text ever goes into a span.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind, StatusCode, get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from seawall.config.monitoring import TracingSettings
from seawall.config.schema import Deployment
from seawall.monitoring.answer import Answer
from seawall.pipeline.context import RequestContext
from seawall.stores.records import RequestRecord

logger = logging.getLogger(__name__)

# How long a stopping Seawall waits for the collector to take the last spans.
_SHUTDOWN_WAIT_SECONDS = 5.0

Attributes = dict[str, AttributeValue]


def build_request_tracer(settings: TracingSettings) -> RequestTracer:
    """A tracer exporting to ``settings.otlp_endpoint`` in batches, off the request path.

    The provider is this Seawall's own, never the global one: a process may run
    several gateways (tests do), each with its own settings. The exporter and the
    batch processor also read the standard ``OTEL_EXPORTER_OTLP_TRACES_*`` (headers,
    timeout, compression, certificates) and ``OTEL_BSP_*`` variables.
    """
    assert settings.otlp_endpoint is not None, "tracing is off without an endpoint"
    provider = TracerProvider(
        # The tracer decides for traces it starts (sampling_ratio); the SDK follows the
        # caller's sampled flag for the others.
        sampler=ParentBased(root=ALWAYS_ON),
        resource=Resource.create({SERVICE_NAME: settings.service_name}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
    )
    return RequestTracer(provider, settings.sampling_ratio)


class RequestTracer:
    """Observer: the spans of each finished request, sampled at ``ratio`` or by the caller.

    The sampling decision for a request without a ``traceparent`` is taken here, once
    the request is over and before any OpenTelemetry work: a server error (5xx) is
    always traced, the others at ``ratio``; an unsampled request costs one random
    number, where the SDK's own ratio sampler would cost a span object and its ids.
    """

    __slots__ = ("_coin", "_propagator", "_provider", "_ratio", "_servers", "_tracer")

    def __init__(
        self, provider: TracerProvider, ratio: float, rng: random.Random | None = None
    ) -> None:
        self._provider = provider
        self._ratio = ratio
        self._coin = (rng or random.Random()).random
        self._tracer = provider.get_tracer("seawall")
        self._propagator = TraceContextTextMapPropagator()
        # Each deployment's server.address and server.port, parsed once.
        self._servers: dict[str, Attributes] = {}

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """Create the request's span and its attempts' spans, if the trace is sampled."""
        parent = None
        if ctx.traceparent is not None:
            parent = self._propagator.extract({"traceparent": ctx.traceparent})
            if not get_current_span(parent).get_span_context().is_valid:
                parent = None  # malformed: this Seawall starts the trace
        if parent is None and record.status_code < 500 and self._coin() >= self._ratio:
            return  # not sampled; a failure is always traced (the decision comes at the end)
        model = record.public_model
        operation = record.operation
        start = int(ctx.received_at * 1e9)
        end = start + int(record.latency_ms * 1e6)
        span = self._tracer.start_span(
            f"{operation} {model}" if model else operation,
            context=parent,
            kind=SpanKind.SERVER,
            start_time=start,
        )
        if not span.is_recording():
            return  # the caller did not sample its trace
        span.set_attributes(_request_attributes(ctx, record, answer))
        if record.status_code >= 500:
            span.set_status(StatusCode.ERROR)
        if ctx.attempt_timings:
            self._attempt_spans(ctx, record, set_span_in_context(span), start, end)
        span.end(end)

    def _attempt_spans(
        self,
        ctx: RequestContext,
        record: RequestRecord,
        parent: Context,
        start: int,
        end: int,
    ) -> None:
        timings = ctx.attempt_timings
        last = len(timings) - 1
        for index, timing in enumerate(timings):
            deployment = timing.deployment
            ended = start + int((timing.ended - ctx.started) * 1e9)
            error_type = timing.error_type
            if index == last and ctx.stream and timing.status == 200:
                # The answering stream's attempt lasts until the stream ended, and shares
                # its fate: broken mid-way, or abandoned by the client.
                ended = end
                error_type = record.error_type
            attributes: Attributes = {
                "gen_ai.operation.name": record.operation,
                "gen_ai.request.model": deployment.model,
                "gen_ai.provider.name": deployment.provider,
                "seawall.deployment": deployment.name,
                "seawall.attempt.number": index + 1,
                "seawall.attempt.status": timing.status,
                **self._server(deployment),
            }
            if error_type is not None:
                attributes["error.type"] = error_type
            span = self._tracer.start_span(
                f"{record.operation} {deployment.model}",
                context=parent,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=start + int((timing.began - ctx.started) * 1e9),
            )
            if error_type is not None:
                span.set_status(StatusCode.ERROR)
            span.end(ended)

    def _server(self, deployment: Deployment) -> Attributes:
        server = self._servers.get(deployment.name)
        if server is None:
            server = self._servers[deployment.name] = _server_attributes(deployment.api_base)
        return server

    async def aclose(self) -> None:
        """Export the spans still queued, waiting a few seconds at most for the collector."""
        done = threading.Event()

        def shut_down() -> None:
            try:
                self._provider.shutdown()
            finally:
                done.set()

        # A thread of its own: an unreachable collector can hold the exporter for its
        # whole timeout per batch, and must not hold up the server's stop.
        threading.Thread(target=shut_down, name="seawall-trace-export", daemon=True).start()
        if not await asyncio.to_thread(done.wait, _SHUTDOWN_WAIT_SECONDS):
            logger.warning(
                "the trace collector took no spans within %gs; the last ones are lost",
                _SHUTDOWN_WAIT_SECONDS,
            )


def _request_attributes(
    ctx: RequestContext, record: RequestRecord, answer: Answer | None
) -> Attributes:
    """The request span's attributes: conventions first, then Seawall's own."""
    attributes: Attributes = {
        "gen_ai.operation.name": record.operation,
        "http.response.status_code": record.status_code,
        "seawall.request_id": record.request_id,
        "seawall.protocol": record.protocol,
        "seawall.stream": record.stream,
        "seawall.cost_usd": record.cost_usd,
    }
    if record.public_model:
        attributes["gen_ai.request.model"] = record.public_model
    if record.deployment and record.provider:
        attributes["seawall.deployment"] = record.deployment
        attributes["gen_ai.provider.name"] = record.provider
        if record.upstream_model and record.status_code < 400:
            attributes["gen_ai.response.model"] = record.upstream_model
    if record.prompt_tokens or record.completion_tokens:
        attributes["gen_ai.usage.input_tokens"] = record.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = record.completion_tokens
    if answer is not None and answer.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = (answer.finish_reason,)
    body = ctx.body
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        attributes["gen_ai.request.temperature"] = float(temperature)
    if record.error_type is not None:
        attributes["error.type"] = record.error_type
    if record.cache is not None:
        attributes["seawall.cache"] = record.cache
    if record.tenant_id is not None:
        attributes["seawall.tenant"] = record.tenant_id
    if record.refused is not None:
        attributes["seawall.refused"] = record.refused
    return attributes


def _server_attributes(api_base: str | None) -> Attributes:
    """``server.address`` and ``server.port`` of an upstream (none for local runtimes)."""
    if not api_base:
        return {}
    url = urlsplit(api_base)
    if not url.hostname:
        return {}
    attributes: Attributes = {"server.address": url.hostname}
    port = url.port or {"https": 443, "http": 80}.get(url.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes
