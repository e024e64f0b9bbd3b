"""The real OpenAI SDK gets OpenAI-shaped chat completions from the simulator."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from seawall.simulator import RunningSimulator, SimulatorProfile, running_simulator
from seawall.tokens import TokenCounter
from tests.simulator.clients import async_openai, sync_openai

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "detailed": {"type": "boolean"},
            },
            "required": ["city", "days", "unit"],
            "additionalProperties": False,
        },
    },
}


async def test_answer_is_deterministic_echoes_model_and_counts_usage(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    first = await client.chat.completions.create(model="gpt-sim", messages=QUESTION)
    second = await client.chat.completions.create(model="gpt-sim", messages=QUESTION)

    content = first.choices[0].message.content
    assert content is not None
    assert content.startswith("Simulated answer to: What is the capital of France?")
    assert second.choices[0].message.content == content
    assert first.id != second.id
    assert first.model == "gpt-sim"
    assert first.object == "chat.completion"
    assert first.choices[0].finish_reason == "stop"
    counter = TokenCounter()
    assert first.usage is not None
    assert first.usage.prompt_tokens == counter.count_messages(QUESTION)
    assert first.usage.completion_tokens == counter.count_text(content) == 32
    assert first.usage.total_tokens == first.usage.prompt_tokens + 32


def test_sync_client_gets_a_completion_and_a_stream(threaded_simulator: RunningSimulator) -> None:
    client = sync_openai(threaded_simulator)
    whole = client.chat.completions.create(model="gpt-sim", messages=QUESTION)
    stream = client.chat.completions.create(model="gpt-sim", messages=QUESTION, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert streamed == whole.choices[0].message.content


async def test_stream_carries_the_same_text_and_a_final_usage_chunk(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    whole = await client.chat.completions.create(model="gpt-sim", messages=QUESTION)
    stream = await client.chat.completions.create(
        model="gpt-sim",
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump() if whole.usage else False
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_n_choices_stop_strings_and_max_tokens(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    several = await client.chat.completions.create(model="m", messages=QUESTION, n=3)
    assert [choice.index for choice in several.choices] == [0, 1, 2]
    assert len({choice.message.content for choice in several.choices}) == 3

    stopped = await client.chat.completions.create(model="m", messages=QUESTION, stop=["France"])
    assert stopped.choices[0].message.content == "Simulated answer to: What is the capital of "
    assert stopped.choices[0].finish_reason == "stop"

    cut = await client.chat.completions.create(model="m", messages=QUESTION, max_tokens=5)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 5
    newer = await client.chat.completions.create(
        model="m", messages=QUESTION, max_completion_tokens=5, temperature=0.2, top_p=0.9, seed=7
    )
    assert newer.choices[0].message.content == cut.choices[0].message.content


async def test_streamed_choices_are_interleaved_and_each_finishes(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    stream = await client.chat.completions.create(
        model="m", messages=QUESTION, n=2, max_tokens=4, stream=True
    )
    texts = {0: "", 1: ""}
    finishes = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    whole = await client.chat.completions.create(model="m", messages=QUESTION, max_tokens=4)
    assert finishes == {0: "length", 1: "length"}
    assert texts[0] == texts[1] == whole.choices[0].message.content
    assert TokenCounter().count_text(texts[0]) <= 4


async def test_logprobs_come_per_token_with_alternatives(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    reply = await client.chat.completions.create(
        model="m", messages=QUESTION, logprobs=True, top_logprobs=3
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(entry.token for entry in logprobs.content) == reply.choices[0].message.content
    for entry in logprobs.content:
        assert entry.logprob <= 0
        assert bytes(entry.bytes or []) == entry.token.encode()
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token

    stream = await client.chat.completions.create(
        model="m", messages=QUESTION, logprobs=True, top_logprobs=1, stream=True
    )
    streamed = [
        c.choices[0].logprobs async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert all(lp is not None and lp.content and len(lp.content) == 1 for lp in streamed)


async def test_tools_are_called_with_arguments_valid_against_their_schema(
    simulator: RunningSimulator,
) -> None:
    client = async_openai(simulator)
    reply = await client.chat.completions.create(model="m", messages=QUESTION, tools=[WEATHER_TOOL])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    arguments = json.loads(calls[0].function.arguments)
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])

    declined = await client.chat.completions.create(
        model="m", messages=QUESTION, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert declined.choices[0].message.tool_calls is None
    assert declined.choices[0].finish_reason == "stop"


async def test_streamed_tool_call_accumulates_like_openai(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    async with client.chat.completions.stream(
        model="m",
        messages=QUESTION,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = await stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])


async def test_after_a_tool_result_the_model_answers_in_words(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    first = await client.chat.completions.create(model="m", messages=QUESTION, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    history = [
        *QUESTION,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"},
    ]
    second = await client.chat.completions.create(model="m", messages=history, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content

    forced = await client.chat.completions.create(
        model="m", messages=history, tools=[WEATHER_TOOL], tool_choice="required"
    )
    assert forced.choices[0].finish_reason == "tool_calls"


async def test_json_modes_return_json(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    plain = await client.chat.completions.create(
        model="m", messages=QUESTION, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(plain.choices[0].message.content or ""), dict)

    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "population": {"type": "integer", "exclusiveMinimum": 0},
            "landmarks": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "country": {"$ref": "#/$defs/country"},
        },
        "required": ["city", "population", "landmarks", "country"],
        "additionalProperties": False,
        "$defs": {
            "country": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "code": {"type": "string"}},
                "required": ["name", "code"],
                "additionalProperties": False,
            }
        },
    }
    structured = await client.chat.completions.create(
        model="m",
        messages=QUESTION,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "capital", "schema": schema, "strict": True},
        },
    )
    jsonschema.validate(json.loads(structured.choices[0].message.content or ""), schema)


async def test_bad_requests_get_openai_errors(simulator: RunningSimulator) -> None:
    client = async_openai(simulator)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="m", messages=[])
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        await client.completions.create(model="m", prompt="legacy endpoint")


async def test_required_key_is_checked_as_a_bearer_token() -> None:
    async with running_simulator(SimulatorProfile(api_key="sk-right")) as sim:
        with pytest.raises(openai.AuthenticationError) as caught:
            await async_openai(sim, api_key="sk-wrong").models.list()
        assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        models = await async_openai(sim, api_key="sk-right").models.list()
        assert models.data
