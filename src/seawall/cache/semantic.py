"""Semantic cache: a near-repeat of a cached question gets its answer.

Only the last user message is compared by meaning; everything else must match
exactly. The context of a request is its exact key with the last user message
blanked (so the model, system prompt, earlier turns, parameters and scope are all
in it), and a message is only compared with messages asked in the same context.
A request is eligible when it

* has no tools or functions (a tool call answers the exact arguments it was given),
* has at most ``max_turns`` user messages,
* ends with a user message of plain text,
* is deterministic (temperature 0 or a seed) unless ``any_temperature`` is set.

A match needs cosine similarity >= ``threshold`` on the local embedder and then the
near-miss check (``near_miss``): same numbers, same polarity words, same names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from seawall.cache.embedder import LocalEmbedder, Vector
from seawall.cache.fields import exact_key
from seawall.cache.near_miss import same_meaning_parts
from seawall.cache.policy import deterministic
from seawall.cache.semantic_index import Candidate, SemanticIndex
from seawall.cache.semantic_share import SharedMessages
from seawall.config.cache import SemanticSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Question:
    """An eligible request's context and last user message."""

    context: str
    text: str


def question_of(
    settings: SemanticSettings, scope: str, model: str, body: dict[str, Any]
) -> Question | None:
    """The request's context and last user message, or None when it is not eligible."""
    if body.get("tools") or body.get("functions"):
        return None
    if not settings.any_temperature and not deterministic(body):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    text = _text(last.get("content"))
    if not text:
        return None
    turns = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user")
    if turns > settings.max_turns:
        return None
    blanked = {**body, "messages": [*messages[:-1], {"role": "user", "content": ""}]}
    return Question(exact_key(scope, model, blanked), text)


def _text(content: Any) -> str | None:
    """Plain text content (a string, or text parts only), else None."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    ):
        return "\n".join(part["text"] for part in content)
    return None


class SemanticCache:
    """Finds the cached entry answering a near-repeat; learns each kept answer's message."""

    def __init__(
        self,
        settings: SemanticSettings,
        embedder: LocalEmbedder,
        shared: SharedMessages | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = SemanticIndex(settings.max_entries)
        self.embedder_failed = False
        self._shared = shared

    async def catch_up(self) -> None:
        """Index what other instances learned since the last look (with a shared Redis)."""
        if self._shared is not None:
            for context, key, text, vector in await self._shared.pull():
                self.index.add(context, key, text, vector)

    async def find(self, question: Question) -> tuple[Candidate | None, Vector | None]:
        """The matching stored message (None: no match) and the question's vector.

        The embedder failing (its model missing or broken) costs the match, never the
        request: it is logged once and the vector is None.
        """
        vector = await self.vector(question)
        if vector is None:
            return None, None
        await self.catch_up()
        candidate = self.index.nearest(question.context, vector)
        if candidate is None or candidate.similarity < self.settings.threshold:
            return None, vector
        if not same_meaning_parts(question.text, candidate.text):
            return None, vector
        return candidate, vector

    async def vector(self, question: Question) -> Vector | None:
        """The question's vector; None (logged once) when the embedder fails."""
        try:
            return await self.embedder.embed(question.text)
        except Exception as exc:
            if not self.embedder_failed:
                logger.error("semantic cache: the embedder failed (%s); exact cache only", exc)
            self.embedder_failed = True
            return None

    async def learn(self, question: Question, key: str, vector: Vector) -> None:
        """Index the message of an answer just kept under ``key`` (and share it)."""
        self.index.add(question.context, key, question.text, vector)
        if self._shared is not None:
            await self._shared.publish(question.context, key, question.text, vector)

    def forget(self, question: Question, key: str) -> None:
        """Drop a message whose answer is gone from the store (expired, evicted, stale)."""
        self.index.remove(question.context, key)
