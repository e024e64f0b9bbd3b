"""The request tracer's sampling and the spans of a stream that broke, in memory.

tests/e2e/test_tracing.py drives a real Seawall and collector; these cases need
many requests or a failure that is awkward to produce end to end.
"""

from __future__ import annotations

import random
import time

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from seawall.config.schema import Deployment
from seawall.monitoring.tracing import RequestTracer
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.record import build_record
from seawall.providers.base import Usage

DEPLOYMENT = Deployment("sim", "openai", "gpt-4o-mini", api_base="https://llm.example:8443/v1")


def _tracer(ratio: float) -> tuple[RequestTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=ALWAYS_ON), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return RequestTracer(provider, ratio, random.Random(7)), exporter


def _finish(tracer: RequestTracer, traceparent: str | None = None) -> RequestContext:
    ctx = RequestContext("req_1", "openai", "chat", b"", Identity(), traceparent=traceparent)
    ctx.attempted(DEPLOYMENT, time.perf_counter(), 200)
    tracer.finished(ctx, build_record(ctx), None)
    return ctx


def test_requests_without_a_caller_trace_are_sampled_at_the_ratio() -> None:
    tracer, exporter = _tracer(0.25)
    for _ in range(2000):
        _finish(tracer)
    requests = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert 400 <= len(requests) <= 600


def test_server_errors_are_traced_whatever_the_ratio_unless_the_caller_declined() -> None:
    tracer, exporter = _tracer(0.0)
    for status in (502, 404, 200):
        ctx = RequestContext("req_3", "openai", "chat", b"", Identity())
        ctx.status_code, ctx.error_type = status, "UpstreamUnavailable" if status == 502 else None
        tracer.finished(ctx, build_record(ctx), None)
    traced = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.attributes["http.response.status_code"] for s in traced] == [502]  # type: ignore[index]
    declined = RequestContext(
        "req_4", "openai", "chat", b"", Identity(),
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    )  # fmt: skip
    declined.status_code = 503
    tracer.finished(declined, build_record(declined), None)
    assert len(exporter.get_finished_spans()) == 1


def test_a_malformed_traceparent_does_not_bypass_the_ratio() -> None:
    tracer, exporter = _tracer(0.0)
    _finish(tracer, "00-not-a-trace-01")
    _finish(tracer, "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
    assert exporter.get_finished_spans() == ()
    _finish(tracer, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert len(exporter.get_finished_spans()) == 2


def test_a_stream_that_broke_midway_marks_its_answering_attempt() -> None:
    tracer, exporter = _tracer(1.0)
    ctx = RequestContext("req_2", "openai", "chat", b"", Identity())
    ctx.stream = True
    ctx.deployment = DEPLOYMENT
    ctx.attempted(DEPLOYMENT, time.perf_counter(), 200)  # the first chunk arrived
    ctx.usage = Usage(prompt_tokens=12, completion_tokens=4)
    ctx.error_type = "UpstreamProtocolError"  # then the upstream broke the stream
    tracer.finished(ctx, build_record(ctx), None)

    spans: dict[SpanKind, ReadableSpan] = {s.kind: s for s in exporter.get_finished_spans()}
    request, attempt = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert attempt.attributes is not None and request.attributes is not None
    assert attempt.attributes["error.type"] == "UpstreamProtocolError"
    assert attempt.end_time == request.end_time
    assert attempt.attributes["server.address"] == "llm.example"
    assert attempt.attributes["server.port"] == 8443
    assert request.attributes["gen_ai.usage.output_tokens"] == 4
