"""Rendering Seawall's canonical (OpenAI) chat answers as Anthropic Messages.

Shared by the whole-message renderer here and the stream encoder: how a
finish reason, a completion id and token usage read in Anthropic's format.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: Any, matched_stop: Any) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for an OpenAI finish.

    ``matched_stop`` is the choice's ``stop_reason``: vLLM, and Seawall's own
    Anthropic backend, put the stop string that ended the answer there.
    """
    if finish_reason == "stop" and isinstance(matched_stop, str) and matched_stop:
        return "stop_sequence", matched_stop
    return _STOP_REASONS.get(finish_reason, "end_turn"), None


def anthropic_usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> dict[str, Any]:
    """Anthropic's usage object; its ``input_tokens`` leave out tokens read from cache."""
    cached = max(0, min(cached_tokens, prompt_tokens))
    return {
        "input_tokens": prompt_tokens - cached,
        "output_tokens": completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def openai_usage_counts(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, cached) tokens of an OpenAI usage object; zeros if absent."""
    if not isinstance(usage, dict):
        return 0, 0, 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return (
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        _count(cached),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def message_id_for(completion_id: Any) -> str:
    """An Anthropic ``msg_`` id derived from an OpenAI completion id (random if none)."""
    if isinstance(completion_id, str) and completion_id:
        if completion_id.startswith("msg_"):
            return completion_id
        return "msg_" + completion_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as Anthropic's ``input`` object; {} when they are not one."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str | bytes) or not arguments:
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    else:
        text = ""
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        return refusal
    return text


def _tool_use(call: Any) -> dict[str, Any] | None:
    if not isinstance(call, dict):
        return None
    function = call.get("function")
    if not isinstance(function, dict):
        return None
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else "toolu_" + uuid.uuid4().hex,
        "name": str(function.get("name") or ""),
        "input": tool_input(function.get("arguments")),
    }


def render_message(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` (its first choice) as an Anthropic Message."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    content: list[dict[str, Any]] = []
    if text := _text(message):
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        if (block := _tool_use(call)) is not None:
            content.append(block)
    reason, sequence = stop_reason(choice.get("finish_reason"), choice.get("stop_reason"))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        reason, sequence = "refusal", None
    return {
        "id": message_id_for(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(*openai_usage_counts(completion.get("usage"))),
    }
