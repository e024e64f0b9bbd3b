"""Cached answers replayed as streams, and completed streams assembled into answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from seawall.cache.streams import RecordingStream, ReplayStream, assemble, replay_chunks
from seawall.providers.base import JSONObject, Usage

ANSWER: JSONObject = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The capital is Paris."},
            "logprobs": None,
            "finish_reason": "stop",
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        },
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
}


def test_replayed_chunks_assemble_back_into_the_answer() -> None:
    chunks = replay_chunks(ANSWER, include_usage=False)
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert assemble(chunks, Usage(9, 6)) == ANSWER


def test_usage_chunk_only_when_asked_for() -> None:
    assert all(chunk["choices"] for chunk in replay_chunks(ANSWER, include_usage=False))
    last = replay_chunks(ANSWER, include_usage=True)[-1]
    assert last["choices"] == [] and last["usage"] == ANSWER["usage"]


def test_assembly_joins_content_and_tool_call_fragments_in_order() -> None:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 2, "model": "m"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> JSONObject:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk(
            {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}
        ),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x"'}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
    ]
    message = assemble(chunks, Usage(1, 2))["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert [(c["id"], c["function"]["arguments"]) for c in message["tool_calls"]] == [
        ("a", '{"x": 1}'),
        ("b", "{}"),
    ]


class Upstream:
    """A stream of fixed chunks that may fail after them."""

    def __init__(self, chunks: list[JSONObject], fail: bool = False) -> None:
        self.chunks, self.fail, self.usage = chunks, fail, Usage(9, 6)

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        for chunk in self.chunks:
            yield chunk
        if self.fail:
            raise ConnectionError("upstream reset")

    async def aclose(self) -> None:
        pass


async def test_a_completed_stream_is_kept_once_assembled() -> None:
    kept: list[JSONObject] = []

    async def keep(body: JSONObject) -> None:
        kept.append(body)

    chunks = replay_chunks(ANSWER, include_usage=False)
    relayed = [chunk async for chunk in RecordingStream(Upstream(chunks), keep)]
    assert relayed == chunks
    assert kept == [ANSWER]


async def test_a_failed_or_abandoned_stream_is_never_kept() -> None:
    kept: list[JSONObject] = []

    async def keep(body: JSONObject) -> None:
        kept.append(body)

    chunks = replay_chunks(ANSWER, include_usage=False)
    with pytest.raises(ConnectionError):
        async for _ in RecordingStream(Upstream(chunks, fail=True), keep):
            pass
    abandoned = RecordingStream(Upstream(chunks), keep)
    iterator = aiter(abandoned)
    await anext(iterator)
    await iterator.aclose()  # type: ignore[attr-defined]
    await abandoned.aclose()
    assert kept == []


async def test_replay_stream_costs_nothing() -> None:
    stream = ReplayStream(ANSWER, include_usage=True)
    chunks = [chunk async for chunk in stream]
    assert chunks == replay_chunks(ANSWER, include_usage=True)
    assert stream.usage.total_tokens == 0
