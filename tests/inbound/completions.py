"""OpenAI chat completion objects as an upstream would send them."""

from __future__ import annotations

from typing import Any


def openai_completion(message: dict[str, Any], finish_reason: str, **choice: Any) -> dict[str, Any]:
    """A one-choice completion with usage (10 of 30 prompt tokens cached)."""
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **choice}],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }
