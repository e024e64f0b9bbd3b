"""Traces of real traffic, exported over OTLP/HTTP to a receiver inside the test.

A real ``seawall serve`` sends its spans to a small OTLP/HTTP endpoint on loopback,
which decodes them as a collector would (``ExportTraceServiceRequest``). The batch
processor's delay is shortened with the standard ``OTEL_BSP_SCHEDULE_DELAY``.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.instances import Simulator, eventually, sdk, simulator_process
from tests.e2e.processes import ServerProcess, clean_env

HELLO = [{"role": "user", "content": "Say hello to the tracer"}]
# A caller's trace: W3C traceparent is version-traceid-parentid-flags.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass(frozen=True)
class Received:
    """One span as the collector got it."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    start: int
    end: int
    attributes: dict[str, Any]
    error: bool
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class Collector:
    """An OTLP/HTTP trace endpoint on loopback that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        # Every export as sent, to look for text that must never be in a trace.
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                status = 404
                if self.path == "/v1/traces":
                    collector.bodies.append(body)
                    collector.take(ExportTraceServiceRequest.FromString(body))
                    status = 200
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}/v1/traces"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def take(self, request: ExportTraceServiceRequest) -> None:
        """Keep the spans of one export."""
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans.extend(
                        _received(span, str(resource.get("service.name")))
                        for span in scope_spans.spans
                    )

    def request_span(self, request_id: str) -> Received | None:
        """The SERVER span of the request with this Seawall request id."""
        with self._lock:
            return next(
                (s for s in self.spans if s.attributes.get("seawall.request_id") == request_id),
                None,
            )

    def children(self, parent: Received) -> list[Received]:
        """The spans under ``parent``, in the order they started."""
        with self._lock:
            found = [s for s in self.spans if s.parent_span_id == parent.span_id]
        return sorted(found, key=lambda s: s.start)

    def wait(self, request_id: str, children: int = 0) -> tuple[Received, list[Received]]:
        """The request's span and its ``children`` attempt spans, once all arrived."""

        def arrived() -> bool:
            span = self.request_span(request_id)
            return span is not None and len(self.children(span)) >= children

        assert eventually(arrived, timeout=15), f"no spans for {request_id}: {self.spans}"
        span = self.request_span(request_id)
        assert span is not None
        return span, self.children(span)

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()


def _received(span: Span, service: str) -> Received:
    return Received(
        name=span.name,
        kind=span.kind,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        start=span.start_time_unix_nano,
        end=span.end_time_unix_nano,
        attributes={a.key: _value(a.value) for a in span.attributes},
        error=span.status.code == Status.STATUS_CODE_ERROR,
        service=service,
    )


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    try:
        yield receiver
    finally:
        receiver.close()


@dataclass
class Stack:
    simulator: Simulator
    seawall: ServerProcess
    collector: Collector


def _config(root: Path, simulator: Simulator, endpoint: str, ratio: float) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "seawall.yaml"
    path.write_text(f"""
data_dir: {root}
master_key: {MASTER_KEY}
local_models: false
cache: {{enabled: false}}
deployments:
  sim-a: {{provider: openai, model: gpt-4o-mini, api_base: "{simulator.url}/v1"}}
  sim-b: {{provider: openai, model: gpt-4o-mini, api_base: "{simulator.url}/v1"}}
  sim-claude: {{provider: anthropic, model: claude-sonnet-4-0, api_base: "{simulator.url}"}}
models:
  gpt-4o-mini: [sim-a, sim-b]
  claude-sonnet-4-0: [sim-claude]
monitoring:
  tracing:
    otlp_endpoint: {endpoint}
    sampling_ratio: {ratio}
    service_name: seawall-under-test
""")
    return path


def _seawall(root: Path, simulator: Simulator, endpoint: str, ratio: float) -> ServerProcess:
    env = {k: v for k, v in clean_env().items() if not k.startswith("OTEL_")}
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # export every 100 ms instead of 5 s
    config = _config(root, simulator, endpoint, ratio)
    return start_seawall(config, root / "serve.log", env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Simulator (100 tokens/s), and a Seawall tracing every request to its own collector."""
    root = tmp_path_factory.mktemp("tracing")
    collector = Collector()
    with simulator_process(root / "sim.log", "--tokens-per-second", "100") as simulator:
        seawall = _seawall(root / "seawall", simulator, collector.endpoint, 1.0)
        try:
            yield Stack(simulator, seawall, collector)
        finally:
            seawall.stop()
            collector.close()


def _chat(client: openai.OpenAI, **extra: Any) -> str:
    """Send a short chat request; its Seawall request id."""
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, max_tokens=5, **extra
    )
    raw.parse()
    return raw.headers["x-request-id"]


def test_a_request_and_its_attempt_are_spans_named_and_linked_by_the_conventions(
    stack: Stack,
) -> None:
    stack.simulator.script("lighthouse", "Ahoy from the lamp room")
    raw = sdk(stack.seawall).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Greet the lighthouse keeper"}],
        max_tokens=50,
        temperature=0.3,
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Ahoy from the lamp room"
    assert answer.usage is not None
    span, attempts = stack.collector.wait(raw.headers["x-request-id"], children=1)

    assert span.name == "chat gpt-4o-mini"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.service == "seawall-under-test"
    assert span.parent_span_id == ""  # no caller trace: a root span
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.temperature"] == pytest.approx(0.3)
    assert attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["http.response.status_code"] == 200
    assert attributes["seawall.deployment"] == "sim-a"
    assert attributes["seawall.stream"] is False
    assert attributes["seawall.cost_usd"] > 0
    assert "error.type" not in attributes and not span.error
    # Neither the prompt nor the answer went to the collector.
    assert not any(b"lighthouse" in body or b"Ahoy" in body for body in stack.collector.bodies)

    (attempt,) = attempts
    assert attempt.kind == Span.SPAN_KIND_CLIENT
    assert attempt.trace_id == span.trace_id
    assert attempt.name == "chat gpt-4o-mini"
    assert attempt.attributes["seawall.deployment"] == "sim-a"
    assert attempt.attributes["seawall.attempt.number"] == 1
    assert attempt.attributes["seawall.attempt.status"] == 200
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert span.start <= attempt.start < attempt.end <= span.end


def test_a_failed_attempt_and_its_fallback_are_two_attempt_spans(stack: Stack) -> None:
    stack.simulator.arm(fault="unavailable", times=1)
    request_id = _chat(sdk(stack.seawall))
    span, attempts = stack.collector.wait(request_id, children=2)

    assert [a.attributes["seawall.deployment"] for a in attempts] == ["sim-a", "sim-b"]
    assert [a.attributes["seawall.attempt.number"] for a in attempts] == [1, 2]
    failed, answered = attempts
    assert failed.attributes["seawall.attempt.status"] == 503
    assert failed.attributes["error.type"] == "UpstreamUnavailable"
    assert failed.error
    assert answered.attributes["seawall.attempt.status"] == 200
    assert "error.type" not in answered.attributes and not answered.error
    assert failed.end <= answered.start
    # The request itself succeeded, from the deployment that answered.
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["seawall.deployment"] == "sim-b"
    assert not span.error


def test_a_callers_traceparent_is_continued_and_its_sampled_flag_decides(stack: Stack) -> None:
    client = sdk(stack.seawall)
    sampled = _chat(client, extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    span, (attempt,) = stack.collector.wait(sampled, children=1)
    assert span.trace_id == CALLER_TRACE
    assert span.parent_span_id == CALLER_SPAN
    assert attempt.trace_id == CALLER_TRACE and attempt.parent_span_id == span.span_id

    # Not sampled by the caller: no span, although this Seawall samples everything.
    other_trace = "0af7651916cd43dd8448eb211c80319c"
    unsampled = _chat(client, extra_headers={"traceparent": f"00-{other_trace}-{CALLER_SPAN}-00"})
    later = _chat(client)
    stack.collector.wait(later, children=1)  # spans are exported in order
    assert stack.collector.request_span(unsampled) is None
    assert not any(s.trace_id == other_trace for s in stack.collector.spans)


def test_a_streams_span_ends_with_the_stream_and_carries_its_usage(stack: Stack) -> None:
    raw = sdk(stack.seawall).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=HELLO,
        max_tokens=30,  # 0.3 s of tokens at the simulator's 100 tokens/s
        stream=True,
        stream_options={"include_usage": True},
    )
    first_chunk_at = None
    usage = None
    for chunk in raw.parse():
        if first_chunk_at is None:
            first_chunk_at = time.time_ns()
        usage = chunk.usage or usage
    assert first_chunk_at is not None and usage is not None
    span, (attempt,) = stack.collector.wait(raw.headers["x-request-id"], children=1)

    assert span.attributes["seawall.stream"] is True
    assert span.end > first_chunk_at  # not when the first byte went out
    assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens == 30
    assert span.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    # The answering attempt lasts as long as its stream.
    assert attempt.end == span.end


def test_an_anthropic_messages_call_is_a_chat_operation(stack: Stack) -> None:
    client = anthropic.Anthropic(
        base_url=stack.seawall.url, api_key=MASTER_KEY, max_retries=0, timeout=20
    )
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-0", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    raw.parse()
    span, (attempt,) = stack.collector.wait(raw.headers["x-request-id"], children=1)
    assert span.name == "chat claude-sonnet-4-0"
    assert span.attributes["seawall.protocol"] == "anthropic"
    assert attempt.attributes["gen_ai.provider.name"] == "anthropic"


def test_a_refused_request_has_an_error_span_without_attempts(stack: Stack) -> None:
    client = sdk(stack.seawall)
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    request_id = refused.value.response.headers["x-request-id"]
    span, attempts = stack.collector.wait(request_id)
    assert span.attributes["error.type"] == "ModelNotFound"
    assert span.attributes["http.response.status_code"] == 404
    assert attempts == []


def test_sampling_ratio_zero_sends_only_what_callers_sampled(
    tmp_path: Path, collector: Collector
) -> None:
    with simulator_process(tmp_path / "sim.log") as simulator:
        seawall = _seawall(tmp_path / "seawall", simulator, collector.endpoint, 0.0)
        try:
            client = sdk(seawall)
            ignored = [_chat(client) for _ in range(5)]
            sampled = _chat(
                client, extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
            )
            collector.wait(sampled, children=1)
        finally:
            seawall.stop()
    assert {s.trace_id for s in collector.spans} == {CALLER_TRACE}
    assert all(collector.request_span(request_id) is None for request_id in ignored)
