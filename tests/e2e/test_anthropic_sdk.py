"""The real ``anthropic`` SDK against a live ``seawall serve`` in front of the simulator.

``claude-sonnet-4-0`` is served by an Anthropic-format deployment and ``gpt-4o-mini`` by an
OpenAI-format one, so the same client calls prove translation in both directions.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam, ToolParam

from tests.e2e.conftest import LiveSeawall

QUESTION: list[MessageParam] = [{"role": "user", "content": "Tell me about lighthouses"}]
WEATHER: list[MessageParam] = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(live_seawall: LiveSeawall) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=live_seawall.url, api_key=live_seawall.key, max_retries=0, timeout=20
    )


@pytest.fixture
def async_client(live_seawall: LiveSeawall) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=live_seawall.url, api_key=live_seawall.key, max_retries=0, timeout=20
    )


def arm_fault(live_seawall: LiveSeawall, **fault: object) -> None:
    """Arm a simulator fault for the next matching upstream request."""
    httpx.post(f"{live_seawall.simulator_url}/_simulator/faults", json=fault).raise_for_status()


@pytest.mark.parametrize(
    ("model", "deployment"), [("claude-sonnet-4-0", "sim-claude"), ("gpt-4o-mini", "sim-gpt")]
)
def test_message_answers_through_either_upstream_format(
    client: anthropic.Anthropic, model: str, deployment: str
) -> None:
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=64, system="You are terse.", messages=QUESTION
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert message.stop_reason in ("end_turn", "max_tokens")
    block = message.content[0]
    assert block.type == "text"
    assert block.text.startswith("Simulated answer to:")
    assert "lighthouses" in block.text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-seawall-deployment"] == deployment
    assert raw.headers["x-request-id"].startswith("req_")


async def test_async_message_stops_at_max_tokens(async_client: anthropic.AsyncAnthropic) -> None:
    message = await async_client.messages.create(
        model="claude-sonnet-4-0", max_tokens=3, messages=QUESTION
    )
    assert message.stop_reason == "max_tokens"
    assert 0 < message.usage.output_tokens <= 3


@pytest.mark.parametrize("model", ["claude-sonnet-4-0", "gpt-4o-mini"])
def test_messages_stream_builds_the_final_message(client: anthropic.Anthropic, model: str) -> None:
    whole = client.messages.create(model=model, max_tokens=100, messages=QUESTION)
    with client.messages.stream(model=model, max_tokens=100, messages=QUESTION) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed_text
    assert final.content[0].type == "text"
    assert final.content[0].text == streamed_text
    assert streamed_text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens > 0
    assert final.usage.input_tokens > 0


async def test_async_stream_events_come_in_anthropic_order(
    async_client: anthropic.AsyncAnthropic,
) -> None:
    stream = await async_client.messages.create(
        model="claude-sonnet-4-0", max_tokens=100, messages=QUESTION, stream=True
    )
    events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude-sonnet-4-0", "gpt-4o-mini"])
def test_tools_come_back_as_tool_use_blocks(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=200,
        messages=WEATHER,
        tools=[WEATHER_TOOL],
    )
    assert message.stop_reason == "tool_use"
    uses = [block for block in message.content if block.type == "tool_use"]
    assert uses, message.content
    assert uses[0].name == "get_weather"
    assert "city" in uses[0].input
    assert uses[0].id


def test_streamed_tool_use_arrives_as_a_whole_block(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="gpt-4o-mini",
        max_tokens=200,
        messages=WEATHER,
        tools=[WEATHER_TOOL],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    use = next(block for block in final.content if block.type == "tool_use")
    assert use.type == "tool_use"
    assert use.name == "get_weather" and "city" in use.input


def test_wrong_key_is_an_authentication_error(live_seawall: LiveSeawall) -> None:
    bad = anthropic.Anthropic(base_url=live_seawall.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model="claude-sonnet-4-0", max_tokens=10, messages=QUESTION)
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-9", max_tokens=10, messages=QUESTION)
    assert "claude-9" in caught.value.message
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_bad_request_is_a_bad_request_error(client: anthropic.Anthropic) -> None:
    wizard: Any = [{"role": "wizard", "content": "x"}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-sonnet-4-0", max_tokens=10, messages=wizard)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_missing_max_tokens_is_a_bad_request(async_client: anthropic.AsyncAnthropic) -> None:
    body: dict[str, Any] = {"model": "claude-sonnet-4-0", "messages": QUESTION}
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        await async_client.post("/v1/messages", cast_to=anthropic.types.Message, body=body)


@pytest.mark.parametrize("model", ["claude-sonnet-4-0", "gpt-4o-mini"])
def test_upstream_429_is_a_rate_limit_error_with_retry_after(
    client: anthropic.Anthropic, live_seawall: LiveSeawall, model: str
) -> None:
    arm_fault(live_seawall, fault="rate_limit", times=1, retry_after=2, model=model)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model=model, max_tokens=10, messages=QUESTION)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


@pytest.mark.parametrize("model", ["claude-sonnet-4-0", "gpt-4o-mini"])
def test_reset_mid_stream_raises_instead_of_finishing(
    client: anthropic.Anthropic, live_seawall: LiveSeawall, model: str
) -> None:
    arm_fault(live_seawall, fault="reset_mid_stream", times=1, model=model)
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model=model, max_tokens=100, messages=QUESTION) as stream,
    ):
        for event in stream:
            received.append(event.type)
        stream.get_final_message()
    assert "message_start" in received
    assert "message_stop" not in received
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_async_reset_mid_stream_raises(
    async_client: anthropic.AsyncAnthropic, live_seawall: LiveSeawall
) -> None:
    arm_fault(live_seawall, fault="reset_mid_stream", times=1, model="claude-sonnet-4-0")
    stream = await async_client.messages.create(
        model="claude-sonnet-4-0", max_tokens=100, messages=QUESTION, stream=True
    )
    kinds: list[str] = []
    with pytest.raises(anthropic.APIStatusError):
        async for event in stream:
            kinds.append(event.type)
    assert kinds and "message_stop" not in kinds
