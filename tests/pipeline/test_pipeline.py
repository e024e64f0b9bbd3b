"""The pipeline as the gateway composes it: one record per accepted request, whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from seawall.config import load_settings
from seawall.errors import AuthenticationFailed, InvalidRequest, ModelNotFound
from seawall.pipeline.context import Identity, RequestContext
from seawall.pipeline.pipeline import Pipeline
from seawall.providers.base import ChatResult
from seawall.resilience.admission import Admission
from seawall.resilience.clock import SystemClock
from seawall.services import build_backends, build_pipeline, build_resilience, model_table
from seawall.simulator import running_simulator
from seawall.stores.records import RequestRecord
from seawall.tenancy.costs import PriceBook
from seawall.tokens import TokenCounter
from tests.pipeline.master_key import master_key_only

KEY = "sk-seawall-pipeline-test-key"


class CollectingSink:
    """The record writer's interface, keeping records in a list."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def submit(self, record: RequestRecord) -> None:
        self.records.append(record)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Pipeline, CollectingSink]]:
    async with running_simulator() as sim:
        config = tmp_path / "seawall.yaml"
        config.write_text(
            f"""
local_models: false
deployments:
  sim: {{provider: openai, model: gpt-4o-mini, api_base: "{sim.openai_base_url}"}}
"""
        )
        settings = load_settings(config, {})
        counter = TokenCounter()
        backends = build_backends(counter)
        sink = CollectingSink()
        table = model_table(settings, backends)
        clock = SystemClock()
        resilience = build_resilience(settings, counter, None, clock)
        admission = Admission(settings.resilience.admission, clock)
        prices = PriceBook(settings.deployments)
        pipeline = build_pipeline(
            master_key_only(KEY), sink, admission, table, backends, resilience, prices
        )
        try:
            yield pipeline, sink
        finally:
            for backend in backends.values():
                await backend.aclose()


def context(body: object, key: str | None = KEY) -> RequestContext:
    return RequestContext(
        request_id="req_test",
        protocol="openai",
        operation="chat",
        raw_body=body if isinstance(body, bytes) else orjson.dumps(body),
        identity=Identity(api_key=key, session_id="s-1"),
    )


Gateway = tuple[Pipeline, CollectingSink]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_answer_is_recorded_with_usage_and_route(gateway: Gateway) -> None:
    pipeline, sink = gateway
    reply = await pipeline.run(context(CHAT))
    assert isinstance(reply, ChatResult)
    (record,) = sink.records
    assert (record.status_code, record.public_model, record.deployment) == (
        200,
        "gpt-4o-mini",
        "sim",
    )
    assert record.completion_tokens == reply.usage.completion_tokens > 0
    assert record.session_id == "s-1"


async def test_rejected_requests_are_recorded_with_their_status(gateway: Gateway) -> None:
    pipeline, sink = gateway
    with pytest.raises(InvalidRequest):
        await pipeline.run(context({"model": "gpt-4o-mini", "messages": "nope"}))
    with pytest.raises(ModelNotFound):
        await pipeline.run(context({**CHAT, "model": "gpt-9"}))
    assert [(r.status_code, r.error_type, r.public_model) for r in sink.records] == [
        # The body failed validation, so the model it named is not trusted.
        (400, "InvalidRequest", None),
        (404, "ModelNotFound", "gpt-9"),
    ]


async def test_unauthenticated_requests_are_refused_before_anything_else(gateway: Gateway) -> None:
    pipeline, sink = gateway
    with pytest.raises(AuthenticationFailed):
        await pipeline.run(context(b"not even json", key="sk-wrong"))
    assert sink.records == []
