"""The real Anthropic SDK gets Messages API answers and stream events from the simulator."""

from __future__ import annotations

import anthropic
import httpx
import jsonschema
import pytest

from seawall.simulator import (
    Fault,
    FaultKind,
    RunningSimulator,
    SimulatorProfile,
    running_simulator,
)
from tests.simulator.clients import async_anthropic

QUESTION = [{"role": "user", "content": "Tell me about lighthouses"}]
SEARCH_TOOL = {
    "name": "search",
    "description": "Search the archive.",
    "input_schema": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 3},
            "limit": {"type": "integer", "minimum": 1},
        },
        "required": ["query", "limit"],
    },
}


async def test_message_answers_with_text_usage_and_end_turn(simulator: RunningSimulator) -> None:
    client = async_anthropic(simulator)
    message = await client.messages.create(
        model="claude-sim",
        max_tokens=256,
        system=[{"type": "text", "text": "You are terse."}],
        messages=QUESTION,
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-sim"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    text = message.content[0]
    assert text.type == "text"
    assert text.text.startswith("Simulated answer to: Tell me about lighthouses")
    assert message.usage.output_tokens == 32
    assert message.usage.input_tokens > 0


async def test_max_tokens_and_stop_sequences_end_the_message(simulator: RunningSimulator) -> None:
    client = async_anthropic(simulator)
    short = await client.messages.create(model="c", max_tokens=3, messages=QUESTION, system="Hi")
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens <= 3

    stopped = await client.messages.create(
        model="c", max_tokens=100, messages=QUESTION, stop_sequences=["lighthouses"]
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "lighthouses"
    assert stopped.content[0].text == "Simulated answer to: Tell me about "  # type: ignore[union-attr]


async def test_stream_events_build_the_same_message(simulator: RunningSimulator) -> None:
    client = async_anthropic(simulator)
    whole = await client.messages.create(model="c", max_tokens=100, messages=QUESTION)
    kinds = []
    async with client.messages.stream(model="c", max_tokens=100, messages=QUESTION) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_message()
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens


async def test_raw_stream_has_the_documented_event_order(simulator: RunningSimulator) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        response = await http.post(
            "/v1/messages",
            headers={"anthropic-version": "2023-06-01"},
            json={"model": "c", "max_tokens": 5, "messages": QUESTION, "stream": True},
        )
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_tools_answer_with_tool_use_blocks(simulator: RunningSimulator) -> None:
    client = async_anthropic(simulator)
    message = await client.messages.create(
        model="c", max_tokens=100, messages=QUESTION, tools=[SEARCH_TOOL]
    )
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use"
    assert block.name == "search"
    jsonschema.validate(block.input, SEARCH_TOOL["input_schema"])

    async with client.messages.stream(
        model="c",
        max_tokens=100,
        messages=QUESTION,
        tools=[SEARCH_TOOL],
        tool_choice={"type": "tool", "name": "search"},
    ) as stream:
        streamed = await stream.get_final_message()
    assert streamed.content[0].input == block.input  # type: ignore[union-attr]

    answered = await client.messages.create(
        model="c",
        max_tokens=100,
        tools=[SEARCH_TOOL],
        messages=[
            *QUESTION,
            {"role": "assistant", "content": [block.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "found"}],
            },
        ],
    )
    assert answered.stop_reason == "end_turn"


async def test_errors_use_anthropic_shapes() -> None:
    async with running_simulator(SimulatorProfile(api_key="sk-ant-right")) as sim:
        with pytest.raises(anthropic.AuthenticationError) as denied:
            await async_anthropic(sim, api_key="sk-ant-wrong").messages.create(
                model="c", max_tokens=5, messages=QUESTION
            )
        assert denied.value.body == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        }
        async with httpx.AsyncClient(base_url=sim.url) as http:
            missing = await http.post(
                "/v1/messages",
                headers={"x-api-key": "sk-ant-right", "anthropic-version": "2023-06-01"},
                json={"model": "c", "messages": QUESTION},
            )
        assert missing.status_code == 400
        assert missing.json()["type"] == "error"
        assert missing.json()["error"]["type"] == "invalid_request_error"

        client = async_anthropic(sim, api_key="sk-ant-right")

        sim.faults.arm(Fault(FaultKind.UNAVAILABLE, times=1))
        with pytest.raises(anthropic.InternalServerError) as overloaded:
            await client.messages.create(model="c", max_tokens=5, messages=QUESTION)
        assert overloaded.value.status_code == 529
        assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]

        sim.faults.arm(Fault(FaultKind.RATE_LIMIT, times=1, retry_after=3))
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="c", max_tokens=5, messages=QUESTION)
        assert limited.value.response.headers["retry-after"] == "3"
        assert limited.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
