"""The bundled SmolLM2 chat model, run for real through llama-cpp-python."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from seawall.config.schema import Deployment
from seawall.errors import InvalidRequest, UnsupportedParameter
from seawall.providers.local_llama import LlamaBackend

DEPLOYMENT = Deployment(
    name="local-smollm2",
    provider="local-llama",
    model="smollm2",
    context_window=2048,
    max_concurrency=2,
    threads=1,
)
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
COUNT_TO_FIVE = [{"role": "user", "content": "Count from 1 to 5."}]
# Greedy decoding of this prompt runs well past any max_tokens used below.
COUNT_LONG = [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[LlamaBackend]:
    backend = LlamaBackend()
    yield backend
    await backend.aclose()


def request(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"model": "smollm2", "messages": messages, "temperature": 0, **fields}


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


async def test_answers_a_real_prompt_in_openai_shape(backend: LlamaBackend) -> None:
    result = await backend.chat(DEPLOYMENT, request(CAPITAL, max_tokens=16))
    body = result.body
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "smollm2"
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    assert 0 < result.usage.completion_tokens <= 16
    assert result.usage.prompt_tokens > 5
    assert body["usage"] == result.usage.as_openai()
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


async def test_stream_yields_openai_chunks_and_usage(backend: LlamaBackend) -> None:
    fields = {"max_tokens": 24, "stream": True, "stream_options": {"include_usage": True}}
    stream = await backend.open_stream(DEPLOYMENT, request(CAPITAL, **fields))
    chunks = await collect(stream)
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    *content, finish, usage = chunks
    assert finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert usage["choices"] == []
    assert usage["usage"] == stream.usage.as_openai()
    assert 0 < stream.usage.completion_tokens <= 24
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in content)
    # Greedy decoding: the stream says exactly what the non-streaming answer says.
    whole = await backend.chat(DEPLOYMENT, request(CAPITAL, max_tokens=24))
    assert text == whole.body["choices"][0]["message"]["content"]
    assert stream.usage == whole.usage


async def test_stream_without_include_usage_sends_no_usage_chunk(backend: LlamaBackend) -> None:
    stream = await backend.open_stream(DEPLOYMENT, request(CAPITAL, max_tokens=8))
    chunks = await collect(stream)
    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)
    assert stream.usage.completion_tokens > 0


async def test_stop_sequence_ends_the_answer_before_it(backend: LlamaBackend) -> None:
    fields = {"max_tokens": 40, "stop": ["3"]}
    result = await backend.chat(DEPLOYMENT, request(COUNT_TO_FIVE, **fields))
    (choice,) = result.body["choices"]
    assert choice["finish_reason"] == "stop"
    assert "2" in choice["message"]["content"]
    assert "3" not in choice["message"]["content"]
    chunks = await collect(await backend.open_stream(DEPLOYMENT, request(COUNT_TO_FIVE, **fields)))
    streamed = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert streamed == choice["message"]["content"]


async def test_json_object_mode_gives_parseable_json(backend: LlamaBackend) -> None:
    prompt = [{"role": "user", "content": "Describe Paris as a JSON object with a key city."}]
    fields = {"max_tokens": 100, "response_format": {"type": "json_object"}}
    result = await backend.chat(DEPLOYMENT, request(prompt, **fields))
    assert isinstance(json.loads(result.body["choices"][0]["message"]["content"]), dict)


async def test_json_schema_mode_follows_the_schema(backend: LlamaBackend) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    fields = {"max_tokens": 60, "response_format": response_format}
    result = await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})
    answer = json.loads(result.body["choices"][0]["message"]["content"])
    assert set(answer) == {"city"}
    assert isinstance(answer["city"], str)


async def test_n_gives_that_many_choices(backend: LlamaBackend) -> None:
    fields = {"n": 2, "max_tokens": 6, "temperature": 1.0, "seed": 7}
    result = await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})
    choices = result.body["choices"]
    assert [choice["index"] for choice in choices] == [0, 1]
    assert all(choice["message"]["content"] for choice in choices)
    assert result.usage.completion_tokens <= 12


async def test_same_seed_gives_the_same_sampled_answer(backend: LlamaBackend) -> None:
    fields = {"max_tokens": 12, "temperature": 1.0, "seed": 1234}
    first = await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})
    second = await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})
    assert first.body["choices"] == second.body["choices"]


async def test_output_is_capped_by_the_deployment(backend: LlamaBackend) -> None:
    capped = Deployment(
        name="local-capped", provider="local-llama", model="smollm2", max_output_tokens=5
    )
    result = await backend.chat(capped, request(COUNT_LONG, max_completion_tokens=100))
    assert result.usage.completion_tokens == 5
    assert result.body["choices"][0]["finish_reason"] == "length"


async def test_prompt_longer_than_the_context_is_refused(backend: LlamaBackend) -> None:
    small = Deployment(
        name="local-small", provider="local-llama", model="smollm2", context_window=64
    )
    long_prompt = [{"role": "user", "content": "tell me more " * 100}]
    with pytest.raises(InvalidRequest) as caught:
        await backend.chat(small, request(long_prompt, max_tokens=4))
    assert caught.value.code == "context_length_exceeded"
    # The deployment is still usable for prompts that fit.
    result = await backend.chat(small, request(CAPITAL, max_tokens=4))
    assert result.usage.completion_tokens > 0


async def test_tools_are_refused_with_an_actionable_message(backend: LlamaBackend) -> None:
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    with pytest.raises(UnsupportedParameter) as caught:
        await backend.chat(DEPLOYMENT, request(CAPITAL, tools=[tool]))
    assert caught.value.param == "tools"
    assert "local-smollm2" in caught.value.message
    assert "does not support tools" in caught.value.message
    assert caught.value.openai_body()["error"]["code"] == "unsupported_parameter"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"logit_bias": {"15": 5}}, "logit_bias"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ]
            },
            "messages[0].content",
        ),
        ({"messages": [{"role": "tool", "tool_call_id": "a", "content": "1"}]}, "messages[0]"),
    ],
)
async def test_fields_a_local_model_cannot_honour_are_refused(
    backend: LlamaBackend, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})
    assert caught.value.param == param
    assert "local-smollm2" in caught.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"messages": []},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"temperature": 3},
        {"max_tokens": 0},
        {"n": 0},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"response_format": {"type": "yaml"}},
    ],
)
async def test_malformed_requests_are_invalid(
    backend: LlamaBackend, fields: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequest):
        await backend.chat(DEPLOYMENT, {**request(CAPITAL), **fields})


async def test_text_parts_and_developer_messages_are_read(backend: LlamaBackend) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
    ]
    result = await backend.chat(DEPLOYMENT, request(messages, max_tokens=8))
    assert result.body["choices"][0]["message"]["content"].strip()


async def test_requests_beyond_max_concurrency_all_complete(backend: LlamaBackend) -> None:
    prompts = [[{"role": "user", "content": f"Name a fruit, number {i}."}] for i in range(5)]
    results = await asyncio.gather(
        *(backend.chat(DEPLOYMENT, request(prompt, max_tokens=6)) for prompt in prompts)
    )
    assert len(results) == 5
    for result in results:
        assert result.body["choices"][0]["message"]["content"]
        assert 0 < result.usage.completion_tokens <= 6


async def test_closing_a_stream_early_stops_generation(backend: LlamaBackend) -> None:
    single = Deployment(name="local-single", provider="local-llama", model="smollm2")
    # Without a close this prompt runs to the token limit.
    full = await backend.chat(single, request(COUNT_LONG, max_tokens=60))
    assert full.body["choices"][0]["finish_reason"] == "length"

    stream = await backend.open_stream(single, request(COUNT_LONG, max_tokens=60))
    received = 0
    async for _chunk in stream:
        received += 1
        if received == 3:
            break
    await stream.aclose()
    assert stream.usage.completion_tokens < 10

    # The only model slot is free again: the next request is served.
    after = await backend.chat(single, request(CAPITAL, max_tokens=4))
    assert after.usage.completion_tokens > 0


async def test_embeddings_are_refused(backend: LlamaBackend) -> None:
    with pytest.raises(InvalidRequest, match="not an embedding model"):
        await backend.embed(DEPLOYMENT, {"model": "smollm2", "input": "hi"})


def test_usable_needs_the_model_file(backend: LlamaBackend) -> None:
    assert backend.usable(DEPLOYMENT)
    missing = Deployment(
        name="gone", provider="local-llama", model="x", model_path="/nonexistent/model.gguf"
    )
    assert not backend.usable(missing)
