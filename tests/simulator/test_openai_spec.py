"""Simulator bodies validate against the schemas of OpenAI's published specification."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from seawall.simulator import Fault, FaultKind, RunningSimulator
from tests.openai_spec import OpenAISpec

QUESTION = [{"role": "user", "content": "Validate me"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
        },
    },
}


def _chunks(body: str) -> list[Any]:
    lines = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [orjson.loads(line) for line in lines[:-1]]


async def test_chat_completions_match_the_spec(
    simulator: RunningSimulator, openai_spec: OpenAISpec
) -> None:
    response_schema = openai_spec.validator("CreateChatCompletionResponse")
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        for extra in (
            {"n": 2, "logprobs": True, "top_logprobs": 2, "max_tokens": 6},
            {"tools": [TOOL]},
            {"response_format": {"type": "json_object"}},
        ):
            response = await http.post(
                "/v1/chat/completions", json={"model": "m", "messages": QUESTION, **extra}
            )
            assert response.status_code == 200
            response_schema.validate(response.json())


async def test_stream_chunks_match_the_spec(
    simulator: RunningSimulator, openai_spec: OpenAISpec
) -> None:
    chunk_schema = openai_spec.validator("CreateChatCompletionStreamResponse")
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        for extra in (
            {"logprobs": True, "top_logprobs": 1, "stream_options": {"include_usage": True}},
            {"tools": [TOOL], "n": 2},
        ):
            response = await http.post(
                "/v1/chat/completions",
                json={"model": "m", "messages": QUESTION, "stream": True, **extra},
            )
            assert response.headers["content-type"].startswith("text/event-stream")
            chunks = _chunks(response.text)
            assert len(chunks) > 3
            for chunk in chunks:
                chunk_schema.validate(chunk)


async def test_embeddings_models_and_errors_match_the_spec(
    simulator: RunningSimulator, openai_spec: OpenAISpec
) -> None:
    async with httpx.AsyncClient(base_url=simulator.url) as http:
        embeddings = await http.post("/v1/embeddings", json={"model": "e", "input": ["a", "b"]})
        openai_spec.validate("CreateEmbeddingResponse", embeddings.json())
        models = await http.get("/v1/models")
        openai_spec.validate("ListModelsResponse", models.json())

        simulator.faults.arm(Fault(FaultKind.RATE_LIMIT, times=1))
        errors = [
            await http.post("/v1/chat/completions", json={"model": "m", "messages": QUESTION}),
            await http.post("/v1/chat/completions", content=b"{not json"),
            await http.get("/v1/nothing-here"),
            await http.get("/v1/chat/completions"),
        ]
    assert [error.status_code for error in errors] == [429, 400, 404, 405]
    for error in errors:
        openai_spec.validate("ErrorResponse", error.json())
