"""Token counting, offline, for when an upstream does not report usage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import quicktok

from seawall.providers.base import Usage

# Per-message framing overhead in OpenAI's chat format (role markers, separators).
_MESSAGE_OVERHEAD = 3
_REPLY_PRIMER = 3


class TokenCounter:
    """Counts tokens with one encoding; built once, shared by all requests.

    The vocabulary (about 60 MB in memory) loads on first use: most upstreams
    report usage themselves, and a gateway that never counts never pays for it.
    """

    def __init__(self, encoding: str = "o200k_base") -> None:
        self._encoding_name = encoding
        self._encoding: Any = None

    def count_text(self, text: str) -> int:
        """Tokens in a plain string."""
        if not text:
            return 0
        if self._encoding is None:
            self._encoding = quicktok.get_encoding(self._encoding_name)
        return int(self._encoding.count(text))

    def estimate_usage(self, body: dict[str, Any], answer_text: str) -> Usage:
        """Usage of a chat request and its answer, for upstreams that report none."""
        return Usage(
            prompt_tokens=self.count_messages(body.get("messages") or ()),
            completion_tokens=self.count_text(answer_text),
            estimated=True,
        )

    def count_messages(self, messages: Iterable[dict[str, Any]]) -> int:
        """Prompt tokens of chat messages, including per-message framing."""
        total = _REPLY_PRIMER
        for message in messages:
            total += _MESSAGE_OVERHEAD
            total += self.count_text(message_text(message))
        return total


def message_text(message: dict[str, Any]) -> str:
    """The text a chat message carries, whatever its content shape."""
    content = message.get("content")
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(str(function.get("name", "")))
            parts.append(str(function.get("arguments", "")))
    return "\n".join(parts)
