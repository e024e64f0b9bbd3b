"""The Anthropic backend against the simulator speaking Anthropic's wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import anthropic
import jsonschema
import openai
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from seawall.config.schema import Deployment
from seawall.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    UnsupportedParameter,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from seawall.inbound.anthropic_messages import decode_messages, render_message
from seawall.providers.anthropic import AnthropicBackend, map_error, retry_after
from seawall.providers.anthropic_request import messages_request
from seawall.providers.base import ChatResult
from seawall.providers.http_transport import HttpTransport
from seawall.simulator import RunningSimulator, SimulatorProfile, running_simulator
from seawall.tokens import TokenCounter
from tests.ports import free_port

KEY = "sk-ant-test"
QUESTION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about lighthouses"},
]
LOOKUP_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string", "minLength": 2}},
            "required": ["word"],
        },
    },
}


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


@pytest.fixture
async def simulator() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(SimulatorProfile(api_key=KEY)) as sim:
        yield sim


@pytest.fixture
async def backend(counter: TokenCounter) -> AsyncIterator[AnthropicBackend]:
    backend = AnthropicBackend(HttpTransport(), counter)
    yield backend
    await backend.aclose()


def _deployment(url: str | None, **fields: Any) -> Deployment:
    values: dict[str, Any] = {
        "name": "claude-primary",
        "provider": "anthropic",
        "model": "claude-sim",
        "api_base": url,
        "api_key": KEY,
        "max_output_tokens": 1024,
    }
    values.update(fields)
    return Deployment(**values)


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sim", "messages": QUESTION, **fields}


async def _arm(simulator: RunningSimulator, fault: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{simulator.url}/_simulator/faults", json=fault) as response,
    ):
        assert response.status < 300, await response.text()


async def test_chat_answers_as_an_openai_completion(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    result = await backend.chat(_deployment(simulator.url), _chat())

    completion = openai.types.chat.ChatCompletion.model_validate(result.body)
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "claude-sim"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert (choice.message.content or "").startswith("Simulated answer to: Tell me about")
    assert choice.finish_reason == "stop"
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens == 32
    assert not result.usage.estimated
    assert completion.usage is not None
    assert completion.usage.total_tokens == result.usage.total_tokens


async def test_limits_and_stop_sequences_map_back(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    deployment = _deployment(simulator.url)

    short = await backend.chat(deployment, _chat(max_completion_tokens=3))
    stopped = await backend.chat(deployment, _chat(stop=["lighthouses"]))

    assert short.body["choices"][0]["finish_reason"] == "length"
    assert short.usage.completion_tokens <= 3
    choice = stopped.body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == "lighthouses"
    assert "lighthouses" not in choice["message"]["content"]


async def test_stream_chunks_reassemble_the_answer_with_usage(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    deployment = _deployment(simulator.url)
    whole = await backend.chat(deployment, _chat())

    stream = await backend.open_stream(
        deployment, _chat(stream=True, stream_options={"include_usage": True})
    )
    chunks = [chunk async for chunk in stream]

    parsed = [openai.types.chat.ChatCompletionChunk.model_validate(c) for c in chunks]
    assert parsed[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    assert text == whole.body["choices"][0]["message"]["content"]
    finishes = [c.choices[0].finish_reason for c in parsed if c.choices]
    assert finishes[-1] == "stop"
    assert finishes.count("stop") == 1
    assert parsed[-1].choices == []
    assert parsed[-1].usage is not None
    assert parsed[-1].usage.completion_tokens == 32
    assert stream.usage.prompt_tokens == whole.usage.prompt_tokens
    assert stream.usage.completion_tokens == 32
    assert not stream.usage.estimated


async def test_stream_without_include_usage_still_counts(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    stream = await backend.open_stream(_deployment(simulator.url), _chat(stream=True))
    chunks = [chunk async for chunk in stream]

    assert all(chunk["choices"] for chunk in chunks)
    assert stream.usage.completion_tokens == 32


async def test_tools_round_trip(simulator: RunningSimulator, backend: AnthropicBackend) -> None:
    deployment = _deployment(simulator.url)
    ask = [{"role": "user", "content": "Define lighthouse"}]

    first = await backend.chat(deployment, _chat(messages=ask, tools=[LOOKUP_TOOL]))

    choice = first.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "lookup"
    arguments = orjson.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, LOOKUP_TOOL["function"]["parameters"])

    history = [
        *ask,
        choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "A tower with a light."},
    ]
    second = await backend.chat(deployment, _chat(messages=history, tools=[LOOKUP_TOOL]))

    assert second.body["choices"][0]["finish_reason"] == "stop"
    assert second.body["choices"][0]["message"]["content"]


async def test_streamed_tool_call_arrives_as_tool_call_deltas(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    stream = await backend.open_stream(
        _deployment(simulator.url),
        _chat(
            messages=[{"role": "user", "content": "Define lighthouse"}],
            tools=[LOOKUP_TOOL],
            tool_choice={"type": "function", "function": {"name": "lookup"}},
            stream=True,
        ),
    )
    chunks = [chunk async for chunk in stream]

    deltas = [
        call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert deltas[0]["index"] == 0
    assert deltas[0]["id"].startswith("toolu_")
    assert deltas[0]["function"]["name"] == "lookup"
    assert all(delta["index"] == 0 for delta in deltas)
    arguments = "".join(delta["function"]["arguments"] for delta in deltas)
    jsonschema.validate(orjson.loads(arguments), LOOKUP_TOOL["function"]["parameters"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_rate_limit_is_mapped_with_retry_after(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    await _arm(simulator, {"fault": "rate_limit", "times": 1, "retry_after": 2})

    with pytest.raises(UpstreamRateLimited) as caught:
        await backend.chat(_deployment(simulator.url), _chat())

    assert caught.value.retry_after == pytest.approx(2.0)
    assert "claude-primary" in caught.value.message
    assert caught.value.status == 429


async def test_overloaded_is_mapped_to_unavailable(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    await _arm(simulator, {"fault": "unavailable", "times": 1})

    with pytest.raises(UpstreamUnavailable) as caught:
        await backend.open_stream(_deployment(simulator.url), _chat(stream=True))

    assert "HTTP 529" in caught.value.message


async def test_rejected_credentials_are_seawalls_problem_not_the_clients(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    with pytest.raises(UpstreamError, match="rejected Seawall's credentials") as caught:
        await backend.chat(_deployment(simulator.url, api_key="wrong"), _chat())

    assert caught.value.status == 502


async def test_stream_cut_before_message_stop_is_an_error(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    await _arm(simulator, {"fault": "reset_mid_stream", "times": 1})
    stream = await backend.open_stream(_deployment(simulator.url), _chat(stream=True))

    with pytest.raises(UpstreamError):
        async for _chunk in stream:
            pass


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {}},
                }
            },
            "response_format",
        ),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"n": 2}, "n"),
    ],
)
async def test_what_anthropic_cannot_honour_is_refused(
    fields: dict[str, Any], param: str, backend: AnthropicBackend
) -> None:
    # Refused before any request leaves: the address would refuse a connection anyway.
    deployment = _deployment(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(UnsupportedParameter) as caught:
        await backend.chat(deployment, _chat(**fields))

    assert caught.value.param == param
    assert "claude-primary" in caught.value.message


async def test_embeddings_are_refused(backend: AnthropicBackend) -> None:
    with pytest.raises(InvalidRequest, match="no embeddings"):
        await backend.embed(_deployment(None), {"model": "claude-sim", "input": "hi"})


def test_usable_needs_a_key_or_an_endpoint(backend: AnthropicBackend) -> None:
    assert backend.usable(_deployment(None))
    assert backend.usable(_deployment("http://127.0.0.1:1", api_key=None))
    assert not backend.usable(_deployment(None, api_key=None))


def test_request_translation() -> None:
    body = {
        "model": "claude-sim",
        "messages": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "text", "text": "Rule two."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/b.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"word": "a"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": "{bad"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "first"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "second"}]},
            {"role": "user", "content": "Go on"},
        ],
        "temperature": 1.6,
        "top_p": 0.8,
        "top_k": 20,
        "stop": "END",
        "tools": [LOOKUP_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "u-1",
        "seed": 3,
    }

    request = messages_request(_deployment(None), body)

    assert request == {
        "model": "claude-sim",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/b.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "c1", "name": "lookup", "input": {"word": "a"}},
                    {"type": "tool_use", "id": "c2", "name": "lookup", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "first"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "c2",
                        "content": [{"type": "text", "text": "second"}],
                    },
                    {"type": "text", "text": "Go on"},
                ],
            },
        ],
        "temperature": 1.0,
        "top_p": 0.8,
        "top_k": 20,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "lookup",
                "input_schema": LOOKUP_TOOL["function"]["parameters"],
                "description": "Look a word up.",
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
    }


def test_retry_after_falls_back_to_the_exhausted_limits_reset() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-01-01T12:00:07Z",
        "anthropic-ratelimit-tokens-remaining": "5000",
        "anthropic-ratelimit-tokens-reset": "2025-01-01T12:00:59Z",
    }

    assert retry_after(headers, now) == pytest.approx(7.0)
    assert retry_after({**headers, "retry-after": "3"}, now) == pytest.approx(3.0)
    assert retry_after({}, now) is None


async def test_error_event_mid_stream_raises_the_mapped_error(backend: AnthropicBackend) -> None:
    events = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
        b'"type":"message","role":"assistant","model":"claude-sim","content":[],'
        b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hal"}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Overloaded"}}\n\n'
    )

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=events, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        stream = await backend.open_stream(
            _deployment(f"http://127.0.0.1:{port}/v1"), _chat(stream=True)
        )
        texts: list[str] = []
        with pytest.raises(UpstreamUnavailable, match="Overloaded"):
            async for chunk in stream:
                texts.append(chunk["choices"][0]["delta"].get("content") or "")
    finally:
        await runner.cleanup()

    assert "".join(texts) == "Hal"


async def test_anthropic_sdk_request_round_trips_through_both_translators(
    simulator: RunningSimulator, backend: AnthropicBackend
) -> None:
    raw = orjson.dumps(
        {
            "model": "public-claude",
            "max_tokens": 64,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "Tell me about lighthouses"}],
            "stop_sequences": ["lighthouses"],
        }
    )
    canonical = decode_messages(raw)

    result: ChatResult = await backend.chat(
        _deployment(simulator.url), {**canonical, "model": "claude-sim"}
    )
    message = anthropic.types.Message.model_validate(render_message(result.body, "public-claude"))

    assert message.model == "public-claude"
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "lighthouses"
    assert message.usage.input_tokens == result.usage.prompt_tokens
    assert message.usage.output_tokens == result.usage.completion_tokens


def test_a_prompt_too_long_for_claude_is_a_context_window_error() -> None:
    deployment = Deployment(name="d", provider="anthropic", model="m")
    body = orjson.dumps(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": "prompt is too long: 208310 tokens > 200000 maximum",
            },
        }
    )
    error = map_error(deployment, 400, CIMultiDictProxy(CIMultiDict()), body)
    assert isinstance(error, ContextWindowExceeded)
