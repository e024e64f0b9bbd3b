"""The output side of the guard, applied to an answer: whole or as a stream.

Each choice's text goes through its own ``OutputScanner``: secrets and the profile's
personal data kinds are redacted, and a canary or a leak of the system prompt cuts the
answer off. A cut-off answer ends the way a provider's content filter ends one:
``finish_reason: "content_filter"``, with nothing after the cut. In a stream the
scanner holds back a bounded tail of the text (``OutputPolicy.hold_back``
characters) so that a secret split across chunks is still caught; the held text
goes out with the next chunks or with the chunk that finishes the choice.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

from seawall.guard.detection import Detection
from seawall.guard.events import GuardEvents
from seawall.guard.leakage import PromptShingles
from seawall.guard.output_scan import OutputScanner
from seawall.guard.policy import Applied
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Reply
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult, JSONObject, Usage

_FILTERED = "content_filter"
# System prompts whose phrases are kept ready (templates, and applications' own).
_SHINGLED_PROMPTS = 256


def guard_reply(
    ctx: RequestContext,
    reply: Reply,
    applied: Applied,
    canary: str | None,
    system_prompt: str | None,
    events: GuardEvents,
) -> Reply:
    """``reply`` with the profile's output checks applied."""
    if isinstance(reply, ChatResult):
        _check_result(ctx, reply, applied, canary, system_prompt, events)
        return reply
    if isinstance(reply, EmbeddingResult):
        return reply
    return GuardedStream(ctx, reply, applied, canary, system_prompt, events)


def _check_result(
    ctx: RequestContext,
    reply: ChatResult,
    applied: Applied,
    canary: str | None,
    system_prompt: str | None,
    events: GuardEvents,
) -> None:
    choices = reply.body.get("choices")
    if not isinstance(choices, list):
        return
    # Copies: the body may be a cached entry's, which other requests read as it is.
    choices = [_copied(choice) for choice in choices]
    reply.body = {**reply.body, "choices": choices}
    found: list[Detection] = []
    blocked = False
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(content, str):
            continue
        scanner = OutputScanner(applied.profile.output, shingles_of(system_prompt), canary)
        step = scanner.scan_all(content)
        found += step.detections
        message["content"] = step.text
        if step.blocked:
            blocked = True
            choice["finish_reason"] = _FILTERED
    if found:
        events.output(ctx, applied, found, "block" if blocked else "flag")
    if not blocked and applied.profile.output.off_topic_below > 0:
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        message = first.get("message")
        text = message.get("content") if isinstance(message, dict) else None
        if isinstance(text, str):
            events.off_topic(ctx, applied, text)


def _copied(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    message = choice.get("message")
    return {**choice, "message": dict(message)} if isinstance(message, dict) else dict(choice)


@functools.lru_cache(maxsize=_SHINGLED_PROMPTS)
def _shingles(system_prompt: str) -> PromptShingles:
    return PromptShingles.of(system_prompt)


def shingles_of(system_prompt: str | None) -> PromptShingles | None:
    """The leakage check's phrases of a system prompt, made once per prompt."""
    return None if system_prompt is None else _shingles(system_prompt)


class GuardedStream:
    """Relays a chat stream through one scanner per choice."""

    def __init__(
        self,
        ctx: RequestContext,
        inner: ChatStream,
        applied: Applied,
        canary: str | None,
        system_prompt: str | None,
        events: GuardEvents,
    ) -> None:
        self._ctx = ctx
        self._inner = inner
        self._applied = applied
        self._canary = canary
        self._system_prompt = system_prompt
        self._events = events
        self._scanners: dict[int, OutputScanner] = {}
        self._finished: set[int] = set()
        # What each choice released (the first one's is checked for being off-topic).
        self._texts: dict[int, list[str]] = {}
        self._found: list[Detection] = []
        self._blocked = False

    @property
    def usage(self) -> Usage:
        """The inner stream's usage."""
        return self._inner.usage

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        last: JSONObject | None = None
        try:
            async for chunk in self._inner:
                last = chunk
                chunk = self._scan(chunk)
                yield chunk
                if self._blocked:
                    # Nothing after the cut: the upstream is released at once.
                    await self._inner.aclose()
                    return
            # A stream that ended without finishing a choice still gets its held text.
            if last is not None:
                rest = self._unfinished(last)
                if rest is not None:
                    yield rest
        finally:
            if self._found:
                self._events.output(
                    self._ctx, self._applied, self._found, "block" if self._blocked else "flag"
                )
        if not self._blocked and self._applied.profile.output.off_topic_below > 0:
            self._events.off_topic(self._ctx, self._applied, "".join(self._texts.get(0, [])))

    def _unfinished(self, template: JSONObject) -> JSONObject | None:
        choices = []
        for index, scanner in self._scanners.items():
            if index in self._finished:
                continue
            last = scanner.finish()
            self._found += last.detections
            if last.text:
                choices.append({"index": index, "delta": {"content": last.text}})
        if not choices:
            return None
        rest = {key: value for key, value in template.items() if key != "usage"}
        return {**rest, "choices": choices}

    def _scan(self, chunk: JSONObject) -> JSONObject:
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return chunk
        for choice in choices:
            if isinstance(choice, dict):
                self._scan_choice(choice)
        return chunk

    def _scan_choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index", 0)
        scanner = self._scanners.get(index)
        if scanner is None:
            scanner = self._scanners[index] = OutputScanner(
                self._applied.profile.output, shingles_of(self._system_prompt), self._canary
            )
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        text = ""
        if isinstance(content, str) and content:
            step = scanner.feed(content)
            self._found += step.detections
            text = step.text
            if step.blocked:
                self._cut(choice)
                return
        if choice.get("finish_reason") is not None:
            self._finished.add(index)
            last = scanner.finish()
            self._found += last.detections
            if last.blocked:
                self._cut(choice)
                return
            text += last.text
        if isinstance(delta, dict) and (isinstance(content, str) or text):
            delta["content"] = text
        if text:
            self._texts.setdefault(index, []).append(text)

    def _cut(self, choice: dict[str, Any]) -> None:
        self._blocked = True
        delta = choice.get("delta")
        if isinstance(delta, dict):
            delta["content"] = ""
        choice["finish_reason"] = _FILTERED

    async def aclose(self) -> None:
        """Release the upstream stream."""
        await self._inner.aclose()
