"""System-prompt leakage: how much of the system prompt an answer repeats, word for word.

The system prompt is cut into shingles: every run of ``SHINGLE_WORDS`` (8)
consecutive words, read case- and punctuation-blind. As the answer arrives, its
own 8-word runs are looked up among them; the score (rule ``output.prompt_leak``)
is the share of the prompt's distinct shingles the answer has repeated so far.
An answer that quotes half the prompt scores about 0.5 whatever its formatting:
line breaks, bullets, quotes or case changes do not break a shingle.

Eight words in the same order rarely recur by chance, so ordinary answers score 0
even on a prompt full of stock phrases ("You are a helpful assistant"). A short
prompt has too few shingles for a share to mean anything: one repeated sentence
would score 1.0. Prompts under ``MIN_SHINGLES`` shingles (15 words) are not
checked at all; the canary protects those. Paraphrase and translation are not
caught here: the canary and the input checks are the defences there.

Work is linear in the answer: each word is hashed once, in a window of 8, and the
watch keeps only the last 7 words and a partial word cut by a chunk boundary.
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass

from seawall.guard.detection import Detection

RULE = "output.prompt_leak"
SHINGLE_WORDS = 8
MIN_SHINGLES = 8
# Longer "words" (base64, hashes) are cut: a partial word is all a watch carries.
MAX_WORD_CHARS = 64
_WORD = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return [word[:MAX_WORD_CHARS] for word in _WORD.findall(text.casefold())]


@dataclass(frozen=True, slots=True)
class PromptShingles:
    """The shingles of one system prompt: built once per prompt version, shared by requests."""

    hashes: frozenset[int]

    @classmethod
    def of(cls, system_prompt: str) -> PromptShingles:
        """The shingles of ``system_prompt``."""
        words = _words(system_prompt)
        return cls(
            frozenset(
                hash(tuple(words[index : index + SHINGLE_WORDS]))
                for index in range(len(words) - SHINGLE_WORDS + 1)
            )
        )

    @property
    def checked(self) -> bool:
        """Whether the prompt is long enough for overlap to mean leakage."""
        return len(self.hashes) >= MIN_SHINGLES


class LeakWatch:
    """Follows one answer, chunk by chunk, scoring its overlap with the system prompt."""

    def __init__(self, shingles: PromptShingles, threshold: float) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("the leakage threshold must be more than 0 and at most 1")
        self._shingles = shingles
        self._threshold = threshold
        self._window: deque[str] = deque(maxlen=SHINGLE_WORDS)
        self._seen: set[int] = set()
        self._partial = ""  # a word the last chunk may have cut in two
        self.detected = False

    @property
    def score(self) -> float:
        """The share of the prompt's shingles repeated so far."""
        if not self._shingles.hashes:
            return 0.0
        return len(self._seen) / len(self._shingles.hashes)

    def feed(self, text: str) -> Detection | None:
        """The detection, the first time the score reaches the threshold."""
        if self.detected or not self._shingles.checked or not text:
            return None
        words = _words(self._partial + text)
        self._partial = ""
        if words and _WORD.match(text[-1]):
            # The last word may go on in the next chunk: read it then.
            self._partial = words.pop()
        return self._take(words)

    def finish(self) -> Detection | None:
        """The detection, if the answer's last word takes the score to the threshold."""
        if self.detected or not self._partial:
            return None
        words, self._partial = [self._partial], ""
        return self._take(words)

    def _take(self, words: list[str]) -> Detection | None:
        hashes = self._shingles.hashes
        window = self._window
        for word in words:
            window.append(word)
            if len(window) == SHINGLE_WORDS:
                shingle = hash(tuple(window))
                if shingle in hashes:
                    self._seen.add(shingle)
        if self.score < self._threshold:
            return None
        self.detected = True
        return Detection(
            RULE,
            round(self.score, 3),
            f"the answer repeats {len(self._seen)} of the system prompt's "
            f"{len(hashes)} {SHINGLE_WORDS}-word phrases",
        )
