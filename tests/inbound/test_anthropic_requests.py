"""Anthropic Messages requests decode to canonical (OpenAI-shaped) bodies, or name the bad param."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from seawall.errors import InvalidRequest
from seawall.inbound.anthropic_messages import (
    decode_messages,
)
from seawall.inbound.openai_requests import validate_chat

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
