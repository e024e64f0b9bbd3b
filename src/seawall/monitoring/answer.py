"""What a request was answered, for the observers of finished requests.

Quality signals, request logs and traces look at the answer's text, its finish
reason and, when the provider returned them, its token logprobs. ``Answer`` holds
those for the first choice; ``AnswerCollector`` gathers them from a stream's chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from seawall.pipeline.context import RequestContext
from seawall.stores.records import RequestRecord


@dataclass(slots=True)
class Answer:
    """The first choice of a chat answer."""

    text: str = ""
    finish_reason: str | None = None
    # The chosen tokens' log probabilities, when the request asked for them.
    logprobs: list[float] = field(default_factory=list)
    # The answer called tools instead of (or besides) writing text.
    tool_calls: bool = False
    # The provider said the model refused (OpenAI's ``message.refusal``).
    refusal: bool = False


class Observer(Protocol):
    """Something told about every finished request: metrics, quality, logs, traces."""

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """One request ended; ``answer`` is None for failures and embeddings. Must not block."""
        ...


def answer_of(body: dict[str, Any]) -> Answer | None:
    """The first choice of a ``chat.completion`` object."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    content = message.get("content")
    return Answer(
        text=content if isinstance(content, str) else "",
        finish_reason=choice.get("finish_reason"),
        logprobs=_token_logprobs(choice.get("logprobs")),
        tool_calls=bool(message.get("tool_calls")),
        refusal=bool(message.get("refusal")),
    )


class AnswerCollector:
    """The first choice of a stream, gathered chunk by chunk."""

    __slots__ = ("_answer", "_parts")

    def __init__(self) -> None:
        self._answer = Answer()
        self._parts: list[str] = []

    def add(self, chunk: dict[str, Any]) -> None:
        """Take what one ``chat.completion.chunk`` adds to choice 0."""
        choices = chunk.get("choices")
        if not choices:
            return
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                break
        else:
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                self._parts.append(content)
            if delta.get("tool_calls"):
                self._answer.tool_calls = True
            if delta.get("refusal"):
                self._answer.refusal = True
        if choice.get("finish_reason"):
            self._answer.finish_reason = choice["finish_reason"]
        if choice.get("logprobs"):
            self._answer.logprobs.extend(_token_logprobs(choice["logprobs"]))

    def answer(self) -> Answer:
        """The answer so far."""
        self._answer.text = "".join(self._parts)
        return self._answer


def _token_logprobs(logprobs: Any) -> list[float]:
    if not isinstance(logprobs, dict):
        return []
    content = logprobs.get("content")
    if not isinstance(content, list):
        return []
    return [
        float(token["logprob"])
        for token in content
        if isinstance(token, dict) and isinstance(token.get("logprob"), int | float)
    ]
