"""Cached answers as streams, and streamed answers as cacheable answers.

``ReplayStream`` plays a stored ``chat.completion`` back as the chunks a streaming
upstream would have sent: per choice a first chunk with the role, the whole content
(and tool calls, refusal, logprobs), then one with the finish reason, then the usage
chunk when the client asked for one (``stream_options.include_usage``).

``assemble`` does the reverse for a stream that completed: the chunks joined into
the ``chat.completion`` a non-streaming request would have received, so either kind
of request can be answered from it. ``RecordingStream`` relays a stream and hands
the assembled answer over only when the stream ended normally: a stream that failed
or that the client abandoned is never kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from seawall.providers.base import ChatStream, JSONObject, Usage


class ReplayStream:
    """A cached ``chat.completion`` as a stream of chunks; it cost nothing."""

    def __init__(self, body: JSONObject, *, include_usage: bool) -> None:
        self._body = body
        self._include_usage = include_usage
        self.usage = Usage()

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        for chunk in replay_chunks(self._body, include_usage=self._include_usage):
            yield chunk

    async def aclose(self) -> None:
        """Nothing upstream to release."""


def replay_chunks(body: JSONObject, *, include_usage: bool) -> list[JSONObject]:
    """The chunks of a streamed answer equivalent to ``body``."""
    head = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
    }
    if body.get("system_fingerprint") is not None:
        head["system_fingerprint"] = body["system_fingerprint"]
    chunks: list[JSONObject] = []
    for choice in body.get("choices") or ():
        message = dict(choice.get("message") or {})
        delta: dict[str, Any] = {"role": message.pop("role", "assistant")}
        delta.update({k: v for k, v in message.items() if v is not None})
        if "tool_calls" in delta:
            delta["tool_calls"] = [
                {"index": i, **call} for i, call in enumerate(delta["tool_calls"])
            ]
        first: dict[str, Any] = {"index": choice.get("index", 0), "delta": delta}
        first["logprobs"] = choice.get("logprobs")
        first["finish_reason"] = None
        chunks.append({**head, "choices": [first]})
        last = {"index": first["index"], "delta": {}, "finish_reason": choice.get("finish_reason")}
        chunks.append({**head, "choices": [last]})
    if include_usage and body.get("usage") is not None:
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    return chunks


def assemble(chunks: list[JSONObject], usage: Usage) -> JSONObject:
    """The ``chat.completion`` that a completed stream of ``chunks`` amounts to."""
    choices: dict[int, dict[str, Any]] = {}
    head: JSONObject = {}
    for chunk in chunks:
        head = head or chunk
        for part in chunk.get("choices") or ():
            index = part.get("index", 0)
            choice = choices.setdefault(
                index, {"index": index, "message": {"role": "assistant"}, "finish_reason": None}
            )
            _merge_delta(choice["message"], part.get("delta") or {})
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
    for choice in choices.values():
        message = choice["message"]
        message.setdefault("content", None)
        calls = message.get("tool_calls")
        if calls is not None:
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
        choice["logprobs"] = None
    body: JSONObject = {
        "id": head.get("id", ""),
        "object": "chat.completion",
        "created": head.get("created", 0),
        "model": head.get("model", ""),
        "choices": [choices[i] for i in sorted(choices)],
        # The upstream's own usage object when it streamed one (with its details).
        "usage": next((c["usage"] for c in reversed(chunks) if c.get("usage")), None)
        or usage.as_openai(),
    }
    if head.get("system_fingerprint") is not None:
        body["system_fingerprint"] = head["system_fingerprint"]
    return body


def _merge_delta(message: dict[str, Any], delta: dict[str, Any]) -> None:
    for name in ("content", "refusal"):
        piece = delta.get(name)
        if isinstance(piece, str):
            message[name] = (message.get(name) or "") + piece
    for call in delta.get("tool_calls") or ():
        calls = message.setdefault("tool_calls", {})
        empty = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        slot = calls.setdefault(call.get("index", 0), empty)
        if call.get("id"):
            slot["id"] = call["id"]
        if call.get("type"):
            slot["type"] = call["type"]
        function = call.get("function") or {}
        for name in ("name", "arguments"):
            if isinstance(function.get(name), str):
                slot["function"][name] += function[name]


Keep = Callable[[JSONObject], Awaitable[None]]


class RecordingStream:
    """Relays ``inner``; once it ends normally, ``keep`` gets the assembled answer."""

    def __init__(self, inner: ChatStream, keep: Keep) -> None:
        self._inner = inner
        self._keep = keep

    @property
    def usage(self) -> Usage:
        """The inner stream's usage."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        chunks: list[JSONObject] = []
        async for chunk in self._inner:
            chunks.append(chunk)
            yield chunk
        await self._keep(assemble(chunks, self._inner.usage))

    async def aclose(self) -> None:
        """Close the inner stream (the answer is incomplete: nothing is kept)."""
        await self._inner.aclose()
