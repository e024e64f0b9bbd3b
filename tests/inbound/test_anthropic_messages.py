"""Anthropic Messages inbound: requests decode to canonical bodies, answers render for the SDK."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web

from seawall.errors import InvalidRequest, UpstreamUnavailable
from seawall.inbound.anthropic_messages import (
    AnthropicStreamEncoder,
    decode_messages,
    message_id_for,
    render_message,
)
from seawall.inbound.openai_requests import validate_chat
from tests.conftest import free_port

PNG_DATA = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-test",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    body.update(fields)
    return body


def _decode(body: dict[str, Any]) -> dict[str, Any]:
    return decode_messages(orjson.dumps(body))


# --- decoding -------------------------------------------------------------------------


def test_decode_translates_every_block_kind() -> None:
    body = _body(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric."}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 C, rain"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "service down"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "user-42"},
    )

    assert _decode(body) == {
        "model": "claude-test",
        "max_tokens": 256,
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Be brief."},
                    {"type": "text", "text": "Use metric."},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG_DATA}"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "4 C, rain"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: service down"},
            {"role": "user", "content": "Thanks."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["input_schema"],
                    "description": "Current weather for a city.",
                },
            }
        ],
        "tool_choice": "auto",
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
        "user": "user-42",
    }


def test_decoded_body_is_a_valid_openai_request() -> None:
    body = _body(
        system="You are terse.",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "text", "text": "see chart"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_DATA,
                                },
                            },
                        ],
                    }
                ],
            },
        ],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chat = _decode(body)

    assert validate_chat(chat) is chat
    assert chat["messages"][0] == {"role": "system", "content": "You are terse."}
    assert chat["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "t1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    }
    # OpenAI tool messages carry no images, so the chart follows as user content.
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "see chart"}
    assert chat["messages"][4]["role"] == "user"
    assert chat["messages"][4]["content"][0]["type"] == "image_url"
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_decode_maps_tool_choice(tool_choice: dict[str, Any], expected: Any) -> None:
    chat = _decode(_body(tools=[WEATHER_TOOL], tool_choice=tool_choice))

    assert chat["tool_choice"] == expected
    assert "parallel_tool_calls" not in chat


def test_decode_maps_disabled_parallel_tool_use() -> None:
    chat = _decode(
        _body(tools=[WEATHER_TOOL], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    )

    assert chat["tool_choice"] == "required"
    assert chat["parallel_tool_calls"] is False


def test_decode_keeps_plain_requests_plain() -> None:
    chat = _decode(_body(stream=False, thinking={"type": "disabled"}, service_tier="auto"))

    assert chat == {
        "model": "claude-test",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }


def test_decode_maps_structured_output_to_a_json_schema() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    chat = _decode(_body(output_config={"format": {"type": "json_schema", "schema": schema}}))

    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    del body[key]
    return body


_BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    (_without(_body(), "model"), "model"),
    (_without(_body(), "max_tokens"), "max_tokens"),
    (_without(_body(), "messages"), "messages"),
    (_body(max_tokens=0), "max_tokens"),
    (_body(max_tokens="many"), "max_tokens"),
    (_body(messages=[]), "messages"),
    (_body(temperature=1.5), "temperature"),
    (_body(top_p=-0.1), "top_p"),
    (_body(top_k=-1), "top_k"),
    (_body(stream="yes"), "stream"),
    (_body(stop_sequences="END"), "stop_sequences"),
    (_body(messages=[{"role": "system", "content": "Hi"}]), "messages[0].role"),
    (_body(messages=[{"role": "user"}]), "messages[0].content"),
    (
        _body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages[0].content[0].type",
    ),
    (
        _body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
        "messages[0].content[0].text",
    ),
    (
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": "AA"},
                        }
                    ],
                }
            ]
        ),
        "messages[0].content[0].source.media_type",
    ),
    (
        _body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                }
            ]
        ),
        "messages[0].content[0].type",
    ),
    (
        _body(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]},
            ]
        ),
        "messages[1].content[0].input",
    ),
    (
        _body(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
        "messages[0].content[0].tool_use_id",
    ),
    (_body(system=[{"type": "image"}]), "system[0].type"),
    (_body(tools=[{"name": "f"}]), "tools[0].input_schema"),
    (_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0].type"),
    (_body(tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "nope"}), "tool_choice.name"),
    (_body(tools=[WEATHER_TOOL], tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (_body(metadata={"user_id": 7}), "metadata.user_id"),
    (_body(thinking={"type": "enabled", "budget_tokens": 2048}), "thinking"),
    (_body(frequency_penalty=0.5), "frequency_penalty"),
]


@pytest.mark.parametrize(("body", "param"), _BAD_REQUESTS)
def test_invalid_requests_name_the_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _decode(body)

    assert caught.value.param == param
    assert f"'{param}'" in caught.value.message
    assert caught.value.status == 400


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="could not parse the JSON body"):
        decode_messages(b'{"model": ')


# --- rendering whole messages ------------------------------------------------------------


def _completion(message: dict[str, Any], finish_reason: str, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **choice}],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }


def test_render_text_answer_is_a_valid_message() -> None:
    rendered = render_message(
        _completion({"role": "assistant", "content": "Hi there."}, "stop"), "claude-test"
    )
    message = anthropic.types.Message.model_validate(rendered)

    assert message.id == "msg_abc123"
    assert message.model == "claude-test"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hi there."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    # Anthropic counts cached input apart from the rest.
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.output_tokens == 7


def test_render_tool_answer_parses_arguments_and_survives_bad_ones() -> None:
    completion = _completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Ro'},
                },
            ],
        },
        "tool_calls",
    )
    message = anthropic.types.Message.model_validate(render_message(completion, "claude-test"))

    assert message.stop_reason == "tool_use"
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("tool_use", "call_1", "get_weather", {"city": "Oslo"}),
        ("tool_use", "call_2", "get_weather", {}),
    ]


@pytest.mark.parametrize(
    ("finish_reason", "choice_extra", "stop_reason", "stop_sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),
        ("stop", {"stop_reason": 128001}, "end_turn", None),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
    ],
)
def test_render_maps_each_stop_reason(
    finish_reason: str, choice_extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
) -> None:
    completion = _completion({"role": "assistant", "content": "x"}, finish_reason, **choice_extra)
    rendered = render_message(completion, "claude-test")

    assert rendered["stop_reason"] == stop_reason
    assert rendered["stop_sequence"] == stop_sequence


def test_message_ids_derive_from_completion_ids() -> None:
    assert message_id_for("chatcmpl-xyz") == "msg_xyz"
    assert message_id_for("msg_kept") == "msg_kept"
    assert message_id_for(None).startswith("msg_")


# --- through the real anthropic SDK -----------------------------------------------------------


class FakeAnthropic:
    """An HTTP endpoint at /v1/messages that answers with whatever bytes a test prepared."""

    def __init__(self) -> None:
        self.body = b""
        self.content_type = "application/json"
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=self.body, content_type=self.content_type)

    def client(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.url, api_key="x", max_retries=0)


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


def _chunk(
    delta: dict[str, Any], finish_reason: str | None = None, **choice: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, **choice}],
    }


def _usage_chunk(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def _encode(chunks: list[dict[str, Any]], input_tokens: int, output_tokens: int) -> bytes:
    encoder = AnthropicStreamEncoder("claude-test", "msg_stream1")
    out = [encoder.start()]
    out.extend(encoder.feed(chunk) for chunk in chunks)
    out.append(encoder.finish(input_tokens, output_tokens))
    return b"".join(out)


def _serve_stream(upstream: FakeAnthropic, body: bytes) -> None:
    upstream.body = body
    upstream.content_type = "text/event-stream"


async def test_sdk_reads_a_rendered_message(upstream: FakeAnthropic) -> None:
    completion = _completion({"role": "assistant", "content": "Plain answer."}, "length")
    upstream.body = orjson.dumps(render_message(completion, "claude-test"))
    upstream.content_type = "application/json"

    message = await upstream.client().messages.create(
        model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
    )

    assert message.content[0].text == "Plain answer."  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens"


async def test_sdk_stream_reassembles_text_and_usage(upstream: FakeAnthropic) -> None:
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "The sky "}),
        _chunk({"content": "is blue."}),
        _chunk({}, "stop"),
        _usage_chunk(12, 5),
    ]
    _serve_stream(upstream, _encode(chunks, 12, 5))

    async with upstream.client().messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "Sky?"}]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        message = await stream.get_final_message()

    assert "".join(texts) == "The sky is blue."
    assert message.id == "msg_stream1"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "The sky is blue."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 12
    assert message.usage.output_tokens == 5


async def test_sdk_stream_rebuilds_text_then_tool_calls(upstream: FakeAnthropic) -> None:
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Checking both."}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    }
                ]
            }
        ),
        _chunk({}, "tool_calls"),
    ]
    _serve_stream(upstream, _encode(chunks, 40, 22))

    raw = await upstream.client().messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[{"role": "user", "content": "Weather?"}],
        stream=True,
    )
    events = [event async for event in raw]

    assert [event.type for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]

    async with upstream.client().messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        message = await stream.get_final_message()

    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text"
    tools = [(b.id, b.name, b.input) for b in message.content[1:]]  # type: ignore[union-attr]
    assert tools == [
        ("call_a", "get_weather", {"city": "Oslo"}),
        ("call_b", "get_weather", {"city": "Rome"}),
    ]
    assert message.usage.input_tokens == 40
    assert message.usage.output_tokens == 22


async def test_sdk_stream_reports_the_stop_sequence_and_cached_usage(
    upstream: FakeAnthropic,
) -> None:
    chunks = [
        _chunk({"content": "one two"}),
        _chunk({}, "stop", stop_reason="three"),
        _usage_chunk(50, 2, cached=32),
    ]
    # Zeros from the caller mean "use what the stream reported".
    _serve_stream(upstream, _encode(chunks, 0, 0))

    async with upstream.client().messages.stream(
        model="claude-test",
        max_tokens=50,
        stop_sequences=["three"],
        messages=[{"role": "user", "content": "Count"}],
    ) as stream:
        message = await stream.get_final_message()

    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "three"
    assert message.usage.input_tokens == 18
    assert message.usage.cache_read_input_tokens == 32
    assert message.usage.output_tokens == 2


async def test_sdk_raises_the_error_event_of_a_broken_stream(upstream: FakeAnthropic) -> None:
    encoder = AnthropicStreamEncoder("claude-test", "msg_broken")
    body = (
        encoder.start()
        + encoder.feed(_chunk({"content": "Half an ans"}))
        + encoder.error(UpstreamUnavailable("Deployment 'primary' is overloaded."))
    )
    _serve_stream(upstream, body)

    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with upstream.client().messages.stream(
            model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)

    assert received == ["Half an ans"]
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Deployment 'primary' is overloaded."},
    }
