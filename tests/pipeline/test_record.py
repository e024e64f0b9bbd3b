"""The record stage: every request's cost and who sent it, against the simulator.

Costs are checked against the prices a deployment is billed at and the usage the
record shows, for answers, embeddings, streams that finish, fail or are abandoned,
and requests that fail before any upstream answered.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from seawall.config import load_settings
from seawall.config.schema import Operation
from seawall.errors import ModelNotFound, SeawallError
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.pipeline import Pipeline, Reply
from seawall.pipeline.record import build_record
from seawall.providers.base import ChatResult, EmbeddingResult
from seawall.resilience.admission import Admission
from seawall.resilience.clock import SystemClock
from seawall.services import build_backends, build_pipeline, build_resilience, model_table
from seawall.simulator import running_simulator
from seawall.simulator.faults import Fault, FaultKind, FaultSchedule
from seawall.stores.records import RequestRecord
from seawall.tenancy.costs import PriceBook, format_usd
from seawall.tokens import TokenCounter
from tests.pipeline.master_key import master_key_only

KEY = "sk-seawall-record-test-key"
CLIENT_IP = "203.0.113.7"
OUTPUT_TOKENS = 32


class Sink:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)


@dataclass
class Gateway:
    pipeline: Pipeline
    sink: Sink
    fault: FaultSchedule

    async def run(
        self, model: str, *, stream: bool = False, operation: Operation = "chat"
    ) -> tuple[RequestContext, Reply]:
        body: dict[str, object] = {"model": model}
        if operation == "chat":
            body.update(messages=[{"role": "user", "content": "what does this cost?"}])
            body.update(stream=stream)
        else:
            body.update(input="what does this cost?")
        ctx = RequestContext(
            request_id=f"req_{len(self.sink.records)}",
            protocol="openai",
            operation=operation,
            raw_body=orjson.dumps(body),
            identity=Identity(api_key=KEY, client_ip=CLIENT_IP),
        )
        return ctx, await self.pipeline.run(ctx)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_simulator() as sim:
        config = tmp_path / "seawall.yaml"
        config.write_text(
            f"""
local_models: false
deployments:
  mini: {{provider: openai, model: gpt-4o-mini-2024-07-18, api_base: "{sim.openai_base_url}"}}
  own:
    provider: openai
    model: in-house-chat
    api_base: "{sim.openai_base_url}"
    prices: {{input_per_mtok: 3, output_per_mtok: 7, cached_input_per_mtok: 1}}
  claude: {{provider: anthropic, model: claude-sonnet-4-5-20250929, api_base: "{sim.url}"}}
  embed: {{provider: openai, model: text-embedding-3-small, api_base: "{sim.openai_base_url}"}}
models:
  mini: [mini]
  own: [own]
  claude: [claude]
  embed: [embed]
"""
        )
        settings = load_settings(config, {})
        counter = TokenCounter()
        backends = build_backends(counter)
        clock = SystemClock()
        sink = Sink()
        pipeline = build_pipeline(
            master_key_only(KEY),
            sink,
            Admission(settings.resilience.admission, clock),
            model_table(settings, backends),
            backends,
            build_resilience(settings, counter, None, clock),
            PriceBook(settings.deployments),
        )
        try:
            yield Gateway(pipeline, sink, sim.faults)
        finally:
            for backend in backends.values():
                await backend.aclose()


def billed(record: RequestRecord, input_per_mtok: float, output_per_mtok: float) -> float:
    """What the record's usage costs at these prices (the simulator caches nothing)."""
    return (
        record.prompt_tokens * input_per_mtok + record.completion_tokens * output_per_mtok
    ) / 1_000_000


async def test_answer_records_its_cost_and_tells_the_client(gateway: Gateway) -> None:
    ctx, reply = await gateway.run("mini")
    assert isinstance(reply, ChatResult)
    (record,) = gateway.sink.records
    # A dated gpt-4o-mini snapshot is billed at the table's gpt-4o-mini row.
    assert record.cost_usd == pytest.approx(billed(record, 0.15, 0.60))
    assert record.cost_usd > 0
    header = ctx.response_headers["x-seawall-cost-usd"]
    assert header == format_usd(record.cost_usd)
    assert "e" not in header.lower()
    assert float(Decimal(header)) == pytest.approx(record.cost_usd, rel=1e-6)
    assert (record.tenant_id, record.key_id, record.client_ip) == ("default", "master", CLIENT_IP)


async def test_configured_prices_win_over_the_table(gateway: Gateway) -> None:
    ctx, _ = await gateway.run("own")
    (record,) = gateway.sink.records
    assert record.cost_usd == pytest.approx(billed(record, 3.0, 7.0))
    assert record.cost_usd > 0
    assert ctx.response_headers["x-seawall-cost-usd"] == format_usd(record.cost_usd)


async def test_anthropic_deployment_costs_its_claude_price(gateway: Gateway) -> None:
    await gateway.run("claude")
    (record,) = gateway.sink.records
    assert record.provider == "anthropic"
    assert record.cost_usd == pytest.approx(billed(record, 3.0, 15.0))
    assert record.cost_usd > 0


async def test_embeddings_cost_their_input(gateway: Gateway) -> None:
    ctx, reply = await gateway.run("embed", operation="embeddings")
    assert isinstance(reply, EmbeddingResult)
    (record,) = gateway.sink.records
    assert record.cost_usd == pytest.approx(record.prompt_tokens * 0.02 / 1_000_000)
    assert record.cost_usd > 0
    assert ctx.response_headers["x-seawall-cost-usd"] == format_usd(record.cost_usd)


async def test_a_finished_stream_is_costed_on_its_record(gateway: Gateway) -> None:
    ctx, reply = await gateway.run("own", stream=True)
    assert not isinstance(reply, ChatResult | EmbeddingResult)
    chunks = [chunk async for chunk in reply]
    assert chunks
    (record,) = gateway.sink.records
    assert record.status_code == 200
    assert record.completion_tokens == OUTPUT_TOKENS
    assert record.cost_usd == pytest.approx(billed(record, 3.0, 7.0))
    assert record.cost_usd > 0
    # The headers went out before the usage was known.
    assert "x-seawall-cost-usd" not in ctx.response_headers


async def test_an_abandoned_stream_bills_what_was_generated(gateway: Gateway) -> None:
    _, reply = await gateway.run("own", stream=True)
    assert not isinstance(reply, ChatResult | EmbeddingResult)
    chunks = aiter(reply)
    for _ in range(4):
        await anext(chunks)
    # The client left: the gateway closes the stream, as its relay does.
    await reply.aclose()
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()
    (record,) = gateway.sink.records
    assert record.status_code == 499
    assert 0 < record.completion_tokens < OUTPUT_TOKENS
    assert record.cost_usd == pytest.approx(billed(record, 3.0, 7.0))
    assert record.cost_usd > 0


async def test_a_stream_broken_mid_way_bills_what_came(gateway: Gateway) -> None:
    gateway.fault.arm(Fault(FaultKind.RESET_MID_STREAM, times=1))
    _, reply = await gateway.run("own", stream=True)
    assert not isinstance(reply, ChatResult | EmbeddingResult)
    with pytest.raises(SeawallError):
        async for _ in reply:
            pass
    (record,) = gateway.sink.records
    assert record.status_code >= 500
    assert record.cost_usd == pytest.approx(billed(record, 3.0, 7.0))
    assert record.cost_usd > 0


async def test_a_request_no_upstream_answered_costs_nothing(gateway: Gateway) -> None:
    with pytest.raises(ModelNotFound):
        await gateway.run("gpt-9")
    (record,) = gateway.sink.records
    assert (record.status_code, record.cost_usd) == (404, 0.0)
    assert (record.tenant_id, record.key_id) == ("default", "master")


def test_the_record_keeps_the_routers_decision() -> None:
    ctx = RequestContext(
        request_id="req_routed",
        protocol="openai",
        operation="chat",
        raw_body=b"{}",
        identity=Identity(),
    )
    ctx.route_decision = "smart -> cheap (score 0.21)"
    record = build_record(ctx)
    assert record.route_decision == "smart -> cheap (score 0.21)"
    assert (record.tenant_id, record.key_id, record.cost_usd) == (None, None, 0.0)
