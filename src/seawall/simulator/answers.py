"""Deterministic answer text, delivered in token-sized pieces and cut the way a model stops."""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from seawall.tokens import TokenCounter

# Words that are one token each in the common encodings, so padding is exact.
_FILLER = (
    "the", "model", "answers", "with", "simulated", "words", "that", "fill", "out", "its",
    "configured", "length", "while", "staying", "the", "same", "for", "every", "identical",
    "request", "so", "tests", "and", "benchmarks", "can", "rely", "on", "it", "again",
)  # fmt: skip
_INTRO = ("Simulated", "answer", "to:")
# How much of the prompt the answer echoes; the rest of its length is filler.
_ECHOED_WORDS = 24
# Characters per piece when structured text (JSON) is streamed.
_STRUCTURED_PIECE_CHARS = 6
_CACHED_ANSWERS = 1024

# In a scripted answer, stands for the request's system prompt.
SYSTEM_PLACEHOLDER = "{system}"

Piece = tuple[str, int]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A full answer before any cut: its pieces, text and token count."""

    pieces: tuple[Piece, ...]
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    """What the client receives: pieces with their tokens, how generation ended, the total."""

    pieces: tuple[Piece, ...]
    text: str
    tokens: int
    finish: FinishReason
    # The stop string that ended the answer, when one did.
    stop_sequence: str | None = None


class AnswerWriter:
    """Writes the simulator's answers; one per simulator, answers cached by prompt."""

    def __init__(self, counter: TokenCounter, output_tokens: int) -> None:
        self._counter = counter
        self._length = output_tokens
        self._filler = tuple((" " + word, counter.count_text(" " + word)) for word in _FILLER)
        self._answer = functools.lru_cache(maxsize=_CACHED_ANSWERS)(self._compose)
        # Scripted answers: (text the prompt contains, answer), newest first.
        self._scripts: list[tuple[str, str]] = []

    def script(self, contains: str, text: str) -> None:
        """Answer ``text`` to every prompt containing ``contains`` (newest script wins)."""
        self._scripts.insert(0, (contains, text))

    def clear_scripts(self) -> None:
        """Forget every scripted answer."""
        self._scripts.clear()

    @property
    def scripts(self) -> list[dict[str, str]]:
        """The scripted answers, newest first."""
        return [{"contains": contains, "text": text} for contains, text in self._scripts]

    def reply(
        self,
        prompt: str,
        *,
        choice: int = 0,
        max_tokens: int | None = None,
        stops: Sequence[str] = (),
        system: str = "",
    ) -> Completion:
        """The answer to ``prompt``: "Simulated answer to: ..." padded to the set length,
        or the scripted answer of the newest script whose text the prompt contains, with
        ``{system}`` in it replaced by the request's system text (a leaking model)."""
        for contains, text in self._scripts:
            if contains in prompt:
                text = text.replace(SYSTEM_PLACEHOLDER, system)
                return self.cut(self.words(text), max_tokens, stops)
        return self.cut(self._answer(prompt, choice), max_tokens, stops)

    def words(self, text: str) -> Answer:
        """``text`` as word pieces, as a model would stream it."""
        pieces = tuple(
            (word, self._counter.count_text(word)) for word in re.findall(r"\s*\S+", text)
        )
        return Answer(pieces, text, sum(count for _, count in pieces))

    def structured(
        self, text: str, *, max_tokens: int | None = None, stops: Sequence[str] = ()
    ) -> Completion:
        """``text`` (JSON, tool arguments) delivered in small pieces, cut the same way."""
        return self.cut(self.split(text), max_tokens, stops)

    def split(self, text: str) -> Answer:
        """``text`` as pieces of a few characters each."""
        step = _STRUCTURED_PIECE_CHARS
        pieces = tuple(
            (chunk, self._counter.count_text(chunk))
            for chunk in (text[i : i + step] for i in range(0, len(text), step))
        )
        return Answer(pieces, text, sum(count for _, count in pieces))

    def cut(self, answer: Answer, max_tokens: int | None, stops: Sequence[str]) -> Completion:
        """End ``answer`` at the first stop string or when ``max_tokens`` is spent."""
        end = len(answer.text)
        matched: str | None = None
        for stop in stops:
            index = answer.text.find(stop) if stop else -1
            if 0 <= index < end:
                end, matched = index, stop
        if matched is None and (max_tokens is None or answer.tokens <= max_tokens):
            return Completion(answer.pieces, answer.text, answer.tokens, "stop")
        kept: list[Piece] = []
        used = position = 0
        for text, count in answer.pieces:
            if position >= end:
                break
            if position + len(text) > end:
                text = text[: end - position]
                count = self._counter.count_text(text)
            if max_tokens is not None and used + count > max_tokens:
                return Completion(tuple(kept), answer.text[:position], used, "length")
            kept.append((text, count))
            used += count
            position += len(text)
        return Completion(tuple(kept), answer.text[:position], used, "stop", matched)

    def _compose(self, prompt: str, choice: int) -> Answer:
        pieces: list[Piece] = []
        total = 0
        for index, word in enumerate((*_INTRO, *prompt.split()[:_ECHOED_WORDS])):
            text = word if index == 0 else " " + word
            count = self._counter.count_text(text)
            if total + count > self._length:
                break
            pieces.append((text, count))
            total += count
        # Different prompts and choices get different filler, always the same for the same.
        start = zlib.crc32(prompt.encode()) + 7 * choice
        while total < self._length:
            text, count = self._filler[start % len(self._filler)]
            pieces.append((text, count))
            total += count
            start += 1
        return Answer(tuple(pieces), "".join(text for text, _ in pieces), total)
