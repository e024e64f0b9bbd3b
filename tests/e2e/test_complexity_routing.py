"""The ``auto`` router model through the real ``openai`` SDK, against a live Seawall.

Seawall runs as ``seawall serve`` in front of the simulator, with a cheap and a
strong model on two simulated upstream models, and ``auto`` routing between them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import MASTER_KEY, LiveSeawall, start_seawall
from tests.e2e.processes import clean_env

ROUTED_CONFIG = """
data_dir: {data_dir}
master_key: ${{TEST_MASTER_KEY}}
local_models: false
resilience:
  max_attempts: 1
deployments:
  sim-small: {{provider: openai, model: gpt-4o-mini, api_base: "{sim}/v1", api_key: sim-key}}
  sim-big: {{provider: openai, model: gpt-4o, api_base: "{sim}/v1", api_key: sim-key}}
models:
  auto:
    router: {{cheap: small-model, strong: big-model, threshold: 0.5}}
  small-model: [sim-small]
  big-model: [sim-big]
"""

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
REPORT = "Sales rose 12% in the north while churn doubled in the south after the price change. "


@pytest.fixture(scope="module")
def routed_seawall(
    simulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveSeawall]:
    """``seawall serve`` with a router model in front of two simulated models."""
    data_dir = tmp_path_factory.mktemp("routed-seawall")
    config = data_dir / "seawall.yaml"
    config.write_text(ROUTED_CONFIG.format(data_dir=data_dir, sim=simulator))
    server = start_seawall(config, data_dir / "serve.log", clean_env(TEST_MASTER_KEY=MASTER_KEY))
    try:
        yield LiveSeawall(server.url, MASTER_KEY, simulator, data_dir)
    finally:
        server.stop()


@pytest.fixture
def client(routed_seawall: LiveSeawall) -> openai.OpenAI:
    return openai.OpenAI(base_url=routed_seawall.v1, api_key=routed_seawall.key, max_retries=0)


def recorded(data_dir: Path, request_id: str) -> tuple[Any, ...]:
    """The request record's model, deployment and route decision, once it is written."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(data_dir / "seawall.db") as db:
            row = db.execute(
                "SELECT public_model, deployment, route_decision FROM requests"
                " WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        if row is not None:
            return tuple(row)
        time.sleep(0.1)
    raise AssertionError(f"the request record of {request_id} was never written")


def test_auto_is_listed_with_the_models_it_routes_to(client: openai.OpenAI) -> None:
    listed = {model.id for model in client.models.list()}
    assert {"auto", "small-model", "big-model"} <= listed
    assert client.models.retrieve("auto").id == "auto"


def test_a_simple_prompt_is_answered_by_the_cheap_model(
    client: openai.OpenAI, routed_seawall: LiveSeawall
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.model == "gpt-4o-mini"
    assert raw.headers["x-seawall-model"] == "small-model"
    assert raw.headers["x-seawall-deployment"] == "sim-small"
    decision = raw.headers["x-seawall-route-decision"]
    assert decision.startswith("cheap score=0.")
    assert decision.endswith("model=small-model router=auto")
    model, deployment, recorded_decision = recorded(
        routed_seawall.data_dir, raw.headers["x-request-id"]
    )
    assert (model, deployment, recorded_decision) == ("small-model", "sim-small", decision)


def test_a_complex_prompt_with_tools_is_answered_by_the_strong_model(
    client: openai.OpenAI, routed_seawall: LiveSeawall
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {"role": "system", "content": "You are a careful business analyst."},
            {"role": "user", "content": REPORT * 80},
            {
                "role": "user",
                "content": "Analyze this step by step, compare both regions and explain why "
                "churn rose. Check the weather in each region's capital if it matters.",
            },
        ],
        tools=[WEATHER_TOOL],
        max_tokens=3000,
    )
    completion = raw.parse()
    assert completion.model == "gpt-4o"
    assert raw.headers["x-seawall-model"] == "big-model"
    decision = raw.headers["x-seawall-route-decision"]
    assert decision.startswith("strong score=")
    assert "tools" in decision and "reasoning" in decision and "long_prompt" in decision
    model, deployment, recorded_decision = recorded(
        routed_seawall.data_dir, raw.headers["x-request-id"]
    )
    assert (model, deployment, recorded_decision) == ("big-model", "sim-big", decision)


def test_streams_are_routed_too(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Prove step by step that 17 is prime."}],
        reasoning_effort="high",
        stream=True,
    ) as response:
        chunks = list(response.parse())
        headers = response.headers
    assert chunks and {chunk.model for chunk in chunks} == {"gpt-4o"}
    assert headers["x-seawall-route-decision"].startswith("strong ")


def test_models_asked_for_by_name_are_not_routed(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="big-model", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert raw.headers["x-seawall-model"] == "big-model"
    assert "x-seawall-route-decision" not in raw.headers


def test_anthropic_clients_can_use_the_router(routed_seawall: LiveSeawall) -> None:
    client = anthropic.Anthropic(
        base_url=routed_seawall.url, api_key=routed_seawall.key, max_retries=0, timeout=20
    )
    raw = client.messages.with_raw_response.create(
        model="auto",
        max_tokens=3000,
        messages=[
            {
                "role": "user",
                "content": "Design a rate limiter and analyze its trade-offs step by step.",
            }
        ],
        tools=[
            {
                "name": "get_weather",
                "description": "Current weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    )
    message = raw.parse()
    assert message.model == "auto"
    assert raw.headers["x-seawall-model"] == "big-model"
    assert raw.headers["x-seawall-route-decision"].startswith("strong ")
