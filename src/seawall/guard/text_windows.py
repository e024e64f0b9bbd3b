"""How the injection classifier reads a text: sentence windows, and which of them to embed.

MiniLM embeds at most 256 tokens, a mean-pooled vector of a long text dilutes a short
injection in it, and every embedding costs about 5 ms plus 0.37 ms a token on one
core. So a text is cut into windows of about a sentence, each scored on its own, and
a long text has only some of them embedded, within a budget.

Cutting works on words (runs of letters and digits) and punctuation marks found by one
regular expression, not on MiniLM's WordPiece tokens: tokenizing a 2,000-token prompt
with the model's tokenizer alone takes 7 ms, a sixth of the time allowed. A word is
about 1.3 WordPiece tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Words and single punctuation marks.
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Full stop, exclamation and question marks, their CJK full-width forms and the ellipsis.
_SENTENCE_END = frozenset({".", "!", "?", "\u3002", "\uff01", "\uff1f", "\u2026"})
# A run of letters and digits this long with both in it (or twice as long) is a fragment
# of an encoded blob, a hash or a key, not a word.
_FRAGMENT_CHARS = 16

WINDOW_WORDS = 32
OVERLAP_WORDS = 8
# Sentences shorter than this join the next one.
MIN_WINDOW_WORDS = 6
# What one embedding costs beyond its words, in words (5 ms at 0.37 ms a token).
CALL_COST_WORDS = 10
# A window whose characters are more than this share fragments is not read.
MAX_FRAGMENT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Words:
    """A text's words and punctuation marks: their character spans and lower-case forms."""

    text: str
    spans: tuple[tuple[int, int], ...]
    lowered: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Window:
    """Words ``start`` to ``end`` (exclusive) of a text, and their characters."""

    start: int
    end: int
    text: str

    @property
    def size(self) -> int:
        """Its length in words and punctuation marks."""
        return self.end - self.start


def words(text: str) -> Words:
    """The words and punctuation marks of ``text``."""
    spans = tuple(match.span() for match in _TOKEN.finditer(text))
    return Words(text, spans, tuple(text[a:b].lower() for a, b in spans))


def split(found: Words) -> list[Window]:
    """Every window of a text, in order.

    A window is a sentence or a line, ended by ``.``, ``!``, ``?`` (or their CJK forms)
    before a space, or by a line break. One shorter than ``MIN_WINDOW_WORDS`` joins the
    next; one longer than ``WINDOW_WORDS`` is cut into pieces overlapping by
    ``OVERLAP_WORDS``. A window made mostly of fragments (encoded blobs, hashes, keys) is
    left out: it is not language, and the encoding rules decode it and check what it says.
    """
    count = len(found.spans)
    if count == 0:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    for end in _sentence_ends(found):
        if end - start >= MIN_WINDOW_WORDS or end == count:
            spans.append((start, end))
            start = end
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < MIN_WINDOW_WORDS:
        tail = spans.pop()
        spans[-1] = (spans[-1][0], tail[1])
    windows = []
    for first, last in spans:
        for piece_start, piece_end in _pieces(first, last):
            if _mostly_fragments(found, piece_start, piece_end):
                continue
            left, right = found.spans[piece_start][0], found.spans[piece_end - 1][1]
            windows.append(Window(piece_start, piece_end, found.text[left:right]))
    return windows


def ratings(windows: Sequence[Window], found: Words, lexicon: Mapping[str, float]) -> list[float]:
    """How injection-like each window's words are: their lexicon weights' sum over √length.

    The square root keeps a long window's many weak cues from outranking a short
    sentence's few strong ones.
    """
    weights = [lexicon.get(word, 0.0) for word in found.lowered]
    return [sum(weights[w.start : w.end]) / math.sqrt(w.size) for w in windows]


def choose(
    windows: Sequence[Window], found: Words, lexicon: Mapping[str, float], budget: int
) -> list[Window]:
    """The windows to embed, in text order, within ``budget`` words.

    Each window costs its words plus ``CALL_COST_WORDS``. All of them when they fit;
    else the last window (where an injection appended to a document sits), then the
    others the lexicon rates highest first, while the budget lasts.
    """
    if sum(w.size + CALL_COST_WORDS for w in windows) <= budget:
        return list(windows)
    rated = ratings(windows, found, lexicon)
    order = sorted(range(len(windows) - 1), key=lambda i: (-rated[i], i))
    chosen = [len(windows) - 1]
    left = budget - windows[-1].size - CALL_COST_WORDS
    for index in order:
        cost = windows[index].size + CALL_COST_WORDS
        if cost <= left:
            chosen.append(index)
            left -= cost
    return [windows[i] for i in sorted(chosen)]


def _sentence_ends(found: Words) -> list[int]:
    """Word indexes just past each sentence or line end, the text's end included."""
    ends = []
    text, spans = found.text, found.spans
    for index in range(len(spans) - 1):
        gap = text[spans[index][1] : spans[index + 1][0]]
        if "\n" in gap or (gap and found.lowered[index] in _SENTENCE_END):
            ends.append(index + 1)
    ends.append(len(spans))
    return ends


def _pieces(first: int, last: int) -> list[tuple[int, int]]:
    """A span cut into overlapping pieces of at most ``WINDOW_WORDS``."""
    if last - first <= WINDOW_WORDS:
        return [(first, last)]
    step = WINDOW_WORDS - OVERLAP_WORDS
    starts = list(range(first, last - WINDOW_WORDS + 1, step))
    if starts[-1] + WINDOW_WORDS < last:
        starts.append(last - WINDOW_WORDS)
    return [(s, s + WINDOW_WORDS) for s in starts]


def _mostly_fragments(found: Words, start: int, end: int) -> bool:
    total = fragments = 0
    for word in found.lowered[start:end]:
        total += len(word)
        if _is_fragment(word):
            fragments += len(word)
    return fragments > MAX_FRAGMENT_SHARE * total


def _is_fragment(word: str) -> bool:
    if len(word) >= 2 * _FRAGMENT_CHARS:
        return True
    return (
        len(word) >= _FRAGMENT_CHARS
        and any(c.isdigit() for c in word)
        and any(c.isalpha() for c in word)
    )
