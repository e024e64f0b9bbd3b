"""The real ``openai`` SDK against a live ``seawall serve`` in front of the simulator."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import LiveSeawall


@pytest.fixture
def client(live_seawall: LiveSeawall) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_seawall.v1, api_key=live_seawall.key, max_retries=0)


@pytest.fixture
def async_client(live_seawall: LiveSeawall) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live_seawall.v1, api_key=live_seawall.key, max_retries=0)


def test_chat_completion_answers_with_usage_and_seawall_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello"}],
        extra_headers={"x-request-id": "client-chosen-id"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-request-id"] != "client-chosen-id"
    assert raw.headers["x-seawall-model"] == "gpt-4o-mini"
    assert raw.headers["x-seawall-deployment"] == "sim-gpt"


async def test_async_stream_relays_chunks_and_usage(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text).strip()
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_stream_without_include_usage_sends_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)


def test_tools_come_back_as_tool_calls(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)


def test_json_schema_response_is_valid_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Give me a person"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "person",
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name", "age"],
                },
            },
        },
    )
    person = json.loads(completion.choices[0].message.content or "")
    assert isinstance(person["name"], str) and isinstance(person["age"], int)


def test_embeddings_and_models(client: openai.OpenAI) -> None:
    embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [item.index for item in embedding.data] == [0, 1]
    assert len(embedding.data[0].embedding) > 0
    names = {model.id for model in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-0"} <= names
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


def test_wrong_key_is_an_authentication_error(live_seawall: LiveSeawall) -> None:
    bad = openai.OpenAI(base_url=live_seawall.v1, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert "gpt-9" in caught.value.message


def test_bad_parameter_is_a_bad_request_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            temperature="hot",  # type: ignore[arg-type]
        )
    assert caught.value.param == "temperature"


def test_chat_model_on_embeddings_endpoint_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="chat model"):
        client.embeddings.create(model="gpt-4o-mini", input="x")


def test_upstream_429_reaches_the_client_as_rate_limit(
    client: openai.OpenAI, live_seawall: LiveSeawall
) -> None:
    httpx.post(
        f"{live_seawall.simulator_url}/_simulator/faults",
        json={"fault": "rate_limit", "times": 1, "retry_after": 2},
    ).raise_for_status()
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.headers["retry-after"] == "2"


def test_every_answered_request_is_recorded(
    client: openai.OpenAI, live_seawall: LiveSeawall
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "record me"}],
        extra_headers={"x-seawall-session-id": "conv-7", "x-seawall-feature": "search"},
    )
    request_id = raw.headers["x-request-id"]
    row = None
    deadline = time.monotonic() + 10
    while row is None and time.monotonic() < deadline:
        with sqlite3.connect(live_seawall.data_dir / "seawall.db") as db:
            row = db.execute(
                "SELECT public_model, deployment, status_code, completion_tokens, session_id,"
                " feature FROM requests WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        time.sleep(0.1)
    assert row is not None, "the request record was never written"
    model, deployment, status, completion_tokens, session, feature = row
    assert (model, deployment, status, session, feature) == (
        "gpt-4o-mini",
        "sim-gpt",
        200,
        "conv-7",
        "search",
    )
    assert completion_tokens == raw.parse().usage.completion_tokens
