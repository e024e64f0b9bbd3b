"""OpenAI chunks become Anthropic stream events that the real anthropic SDK reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web

from seawall.errors import UpstreamUnavailable
from seawall.inbound.anthropic_messages import (
    AnthropicStreamEncoder,
    render_message,
)
from tests.inbound.completions import openai_completion
from tests.ports import free_port


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
    completion = openai_completion({"role": "assistant", "content": "Plain answer."}, "length")
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
