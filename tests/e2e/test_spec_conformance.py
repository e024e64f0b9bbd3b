"""What a live Seawall sends validates against the official OpenAI specification's schemas.

Plain HTTP (httpx), so nothing between Seawall and the assertion forgives a wrong field
the way an SDK's lenient models would.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import LiveSeawall
from tests.openai_spec import assert_valid

CHAT = "/v1/chat/completions"
QUESTION = [{"role": "user", "content": "Validate me against the spec"}]
LOOKUP_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a key up.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}
PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
        },
    },
}


@pytest.fixture
def http(live_seawall: LiveSeawall) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_seawall.url,
        headers={"authorization": f"Bearer {live_seawall.key}"},
        timeout=20,
    ) as client:
        yield client


def arm_fault(live_seawall: LiveSeawall, fault: str, **extra: object) -> None:
    """Arm one simulator fault for the next request to gpt-4o-mini."""
    httpx.post(
        f"{live_seawall.simulator_url}/_simulator/faults",
        json={"fault": fault, "times": 1, "model": "gpt-4o-mini", **extra},
    ).raise_for_status()


def sse_data(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order."""
    assert response.headers["content-type"].startswith("text/event-stream")
    return [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")
    ]


def stream_chunks(http: httpx.Client, **extra: Any) -> list[dict[str, Any]]:
    """Stream a chat completion; every chunk, after checking the stream ended with [DONE]."""
    response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION, **extra})
    assert response.status_code == 200, response.text
    data = sse_data(response)
    assert data[-1] == "[DONE]"
    assert "[DONE]" not in data[:-1]
    return [orjson.loads(item) for item in data[:-1]]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="plain"),
        pytest.param({"tools": [LOOKUP_TOOL]}, id="tools"),
        pytest.param({"response_format": PERSON_FORMAT}, id="json_schema"),
        pytest.param({"n": 2}, id="n=2"),
        pytest.param({"logprobs": True, "top_logprobs": 2, "max_tokens": 8}, id="logprobs"),
        pytest.param({"stop": ["spec"]}, id="stop"),
    ],
)
def test_chat_completion_matches_the_spec(http: httpx.Client, extra: dict[str, Any]) -> None:
    response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_valid("CreateChatCompletionResponse", body)
    assert body["model"] == "gpt-4o-mini"
    assert len(body["choices"]) == extra.get("n", 1)


def test_the_features_asked_for_are_in_the_validated_body(http: httpx.Client) -> None:
    def ask(**extra: Any) -> dict[str, Any]:
        response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION, **extra})
        body: dict[str, Any] = response.json()
        return body

    tools = ask(tools=[LOOKUP_TOOL])["choices"][0]
    assert tools["finish_reason"] == "tool_calls"
    assert tools["message"]["tool_calls"][0]["function"]["name"] == "lookup"

    person = orjson.loads(ask(response_format=PERSON_FORMAT)["choices"][0]["message"]["content"])
    assert isinstance(person["name"], str) and isinstance(person["age"], int)

    two = ask(n=2)["choices"]
    assert [choice["index"] for choice in two] == [0, 1]

    logprobs = ask(logprobs=True, top_logprobs=2, max_tokens=8)["choices"][0]["logprobs"]
    assert logprobs["content"]
    assert all(len(token["top_logprobs"]) == 2 for token in logprobs["content"])

    stopped = ask(stop=["spec"])["choices"][0]
    assert stopped["finish_reason"] == "stop"
    assert "spec" not in stopped["message"]["content"]


def test_stream_chunks_match_the_spec_with_usage(http: httpx.Client) -> None:
    chunks = stream_chunks(http, stream=True, stream_options={"include_usage": True})
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    # include_usage: every chunk carries usage null, and a last one carries the totals.
    *content, last = chunks
    assert content and all(chunk["usage"] is None for chunk in content)
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] > 0
    assert last["usage"]["total_tokens"] == (
        last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    )
    assert content[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_chunks_match_the_spec_without_usage(http: httpx.Client) -> None:
    chunks = stream_chunks(http, stream=True)
    assert len(chunks) > 2
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        assert chunk["choices"], "without include_usage every chunk has a choice"
        assert chunk.get("usage") is None
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len({chunk["id"] for chunk in chunks}) == 1


def test_streamed_tool_calls_match_the_spec(http: httpx.Client) -> None:
    chunks = stream_chunks(http, stream=True, tools=[LOOKUP_TOOL])
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    calls = [
        call
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or ()
    ]
    assert calls[0]["function"]["name"] == "lookup" and calls[0]["id"]
    arguments = "".join(call["function"].get("arguments") or "" for call in calls)
    assert "key" in orjson.loads(arguments)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_embeddings_as_floats_match_the_spec(http: httpx.Client) -> None:
    response = http.post(
        "/v1/embeddings", json={"model": "text-embedding-3-small", "input": ["one", "two"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_valid("CreateEmbeddingResponse", body)
    assert [item["index"] for item in body["data"]] == [0, 1]


def test_embeddings_as_base64_decode_to_the_float_vectors(http: httpx.Client) -> None:
    request = {"model": "text-embedding-3-small", "input": ["one", "two"]}
    floats = http.post("/v1/embeddings", json=request).json()
    response = http.post("/v1/embeddings", json={**request, "encoding_format": "base64"})
    assert response.status_code == 200, response.text
    body = response.json()
    # The spec types `embedding` as floats only; OpenAI itself sends base64 as a string of
    # little-endian float32s, so the envelope is validated with the vectors decoded.
    decoded = []
    for item in body["data"]:
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"])
        decoded.append({**item, "embedding": list(struct.unpack(f"<{len(raw) // 4}f", raw))})
    assert_valid("CreateEmbeddingResponse", {**body, "data": decoded})
    for mine, reference in zip(decoded, floats["data"], strict=True):
        assert mine["embedding"] == pytest.approx(reference["embedding"], abs=1e-6)


def test_model_list_and_model_match_the_spec(http: httpx.Client) -> None:
    listed = http.get("/v1/models")
    assert listed.status_code == 200
    assert_valid("ListModelsResponse", listed.json())
    assert {"gpt-4o-mini", "claude-sonnet-4-0"} <= {m["id"] for m in listed.json()["data"]}
    one = http.get("/v1/models/gpt-4o-mini")
    assert one.status_code == 200
    assert_valid("Model", one.json())


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is ``status`` with a spec-valid ErrorResponse body; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_valid("ErrorResponse", body)
    error: dict[str, Any] = body["error"]
    return error


def test_missing_key_is_a_spec_valid_401(live_seawall: LiveSeawall) -> None:
    response = httpx.post(
        f"{live_seawall.url}{CHAT}", json={"model": "gpt-4o-mini", "messages": QUESTION}
    )
    # OpenAI itself answers a missing or wrong key with this type and code.
    error = assert_openai_error(response, 401)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    models = httpx.get(f"{live_seawall.url}/v1/models")
    assert_openai_error(models, 401)


def test_wrong_key_is_a_spec_valid_401(live_seawall: LiveSeawall) -> None:
    response = httpx.post(
        f"{live_seawall.url}{CHAT}",
        json={"model": "gpt-4o-mini", "messages": QUESTION},
        headers={"authorization": "Bearer sk-not-the-key"},
    )
    error = assert_openai_error(response, 401)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert "sk-not-the-key" not in error["message"], "the rejected key must not be echoed"


def test_unknown_model_is_a_spec_valid_404(http: httpx.Client) -> None:
    chat = http.post(CHAT, json={"model": "gpt-9", "messages": QUESTION})
    error = assert_openai_error(chat, 404)
    assert error["code"] == "model_not_found" and "gpt-9" in error["message"]
    assert_openai_error(http.get("/v1/models/gpt-9"), 404)
    embed = http.post("/v1/embeddings", json={"model": "nope-embed", "input": "x"})
    assert_openai_error(embed, 404)


def test_bad_parameter_is_a_spec_valid_400(http: httpx.Client) -> None:
    response = http.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION, "temperature": "hot"}
    )
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error" and error["param"] == "temperature"
    embed = http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": 7})
    assert assert_openai_error(embed, 400)["param"] == "input"


def test_oversized_body_is_a_spec_valid_413(http: httpx.Client) -> None:
    content = "a" * 1_100_000
    response = http.post(
        CHAT, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    )
    assert "max_body_bytes" in assert_openai_error(response, 413)["message"]


def test_upstream_429_is_a_spec_valid_429_with_retry_after(
    http: httpx.Client, live_seawall: LiveSeawall
) -> None:
    arm_fault(live_seawall, "rate_limit", retry_after=2)
    response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION})
    error = assert_openai_error(response, 429)
    assert error["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "2"


@pytest.mark.parametrize(("fault", "status"), [("server_error", 502), ("unavailable", 503)])
def test_upstream_5xx_is_a_spec_valid_gateway_error(
    http: httpx.Client, live_seawall: LiveSeawall, fault: str, status: int
) -> None:
    arm_fault(live_seawall, fault)
    response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION})
    error = assert_openai_error(response, status)
    assert "sim-gpt" in error["message"], "the error names the deployment that failed"
    assert "sim-key" not in response.text


def test_stream_broken_midway_ends_with_a_spec_valid_error_and_no_done(
    http: httpx.Client, live_seawall: LiveSeawall
) -> None:
    arm_fault(live_seawall, "reset_mid_stream")
    response = http.post(CHAT, json={"model": "gpt-4o-mini", "messages": QUESTION, "stream": True})
    assert response.status_code == 200
    data = sse_data(response)
    assert "[DONE]" not in data
    *chunks, last = (orjson.loads(item) for item in data)
    assert chunks, "the failure came after the first chunk"
    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
    assert_valid("ErrorResponse", last)
