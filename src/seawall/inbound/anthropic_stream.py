"""Encoding a stream of OpenAI chunks as Anthropic Messages stream events.

Anthropic streams content as numbered blocks, each opened with
``content_block_start``, grown with deltas and closed with
``content_block_stop``; OpenAI streams flat deltas. The encoder opens a text
block for text, a ``tool_use`` block per tool call, and closes the previous
block when another kind begins.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from seawall.errors import SeawallError
from seawall.inbound.anthropic_replies import anthropic_usage, openai_usage_counts, stop_reason


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _ToolBlock:
    __slots__ = ("block", "call_id")

    def __init__(self, block: int, call_id: str | None) -> None:
        self.block = block
        self.call_id = call_id


class AnthropicStreamEncoder:
    """Turns one answer's OpenAI chunks into Anthropic SSE events, chunk by chunk."""

    def __init__(self, model: str, message_id: str) -> None:
        self._model = model
        self._message_id = message_id
        self._next_block = 0
        self._open: int | None = None
        self._text_block: int | None = None
        self._tools: dict[int, _ToolBlock] = {}
        self._finish_reason: Any = None
        self._matched_stop: Any = None
        self._refused = False
        self._usage: tuple[int, int, int] | None = None

    def start(self) -> bytes:
        """The ``message_start`` event and a ``ping``."""
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Input tokens are known only at the end; message_delta carries them then.
            "usage": anthropic_usage(0, 0, 0),
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _event(
            "ping", {"type": "ping"}
        )

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events one OpenAI chunk becomes (often one, sometimes none)."""
        out: list[bytes] = []
        if isinstance(chunk.get("usage"), dict):
            self._usage = openai_usage_counts(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                self._matched_stop = choice.get("stop_reason")
        return b"".join(out)

    def finish(self, input_tokens: int, output_tokens: int) -> bytes:
        """Close the open block, then ``message_delta`` with stop reason and usage, then stop."""
        out = [self._close()]
        cached = self._usage[2] if self._usage is not None else 0
        if self._usage is not None and input_tokens == 0 and output_tokens == 0:
            input_tokens, output_tokens = self._usage[0], self._usage[1]
        reason, sequence = stop_reason(self._finish_reason, self._matched_stop)
        if self._refused:
            reason, sequence = "refusal", None
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": anthropic_usage(input_tokens, output_tokens, cached),
                },
            )
        )
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, error: SeawallError) -> bytes:
        """An ``error`` event: the stream broke after it began."""
        return _event("error", error.anthropic_body())

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        text = delta.get("content")
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            text = refusal
        if isinstance(text, str) and text:
            self._text(text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool(position, call, out)

    def _text(self, text: str, out: list[bytes]) -> None:
        if self._text_block is None or self._open != self._text_block:
            out.append(self._close())
            self._text_block = self._begin(out, {"type": "text", "text": ""})
        out.append(
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": self._text_block,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )

    def _tool(self, position: int, call: dict[str, Any], out: list[bytes]) -> None:
        index = call.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = position
        raw_id = call.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        tool = self._tools.get(index)
        # Some servers number every call 0 and tell them apart by id only.
        if tool is None or (call_id is not None and tool.call_id not in (None, call_id)):
            out.append(self._close())
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call_id or "toolu_" + uuid.uuid4().hex,
                "name": str(function.get("name") or ""),
                "input": {},
            }
            tool = _ToolBlock(self._begin(out, block), call_id)
            self._tools[index] = tool
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # A fragment for a block already closed (interleaved calls) still names its
            # index; Anthropic's SDK accumulates by index, so it lands where it belongs.
            out.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": tool.block,
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )

    def _begin(self, out: list[bytes], block: dict[str, Any]) -> int:
        index = self._next_block
        self._next_block += 1
        self._open = index
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})
