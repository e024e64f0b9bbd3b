"""A regex that runs only near its anchors: how the injection patterns stay fast.

Every ``Pattern`` names anchors, literal pieces of normalised text one of which
each of its matches holds, and how far before and after an anchor a match can
reach. A text without the anchors is never searched; one with them is searched
only in windows around them, or, for a ``lead`` pattern whose matches start at an
anchor, tried at the anchors alone. For the windows to be exact, every repeat in
a pattern is bounded (``phrases`` bounds words, separators and spaces).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seawall.guard.normalise import strip_accents

# A separator between words.
S = r"[\W_]+"
# Words that make "ignore my previous email" no attack, in the languages covered.
_OWN = (
    r"my|our|mi|mis|mia|mio|mie|miei|mon|ma|mes|meu|minha|meus|minhas|meine?[mnrs]?"
    r"|unser\w*|nuestr\w*|notre|nos|nostr\w*|noss\w*|мо[иеяю]\w*|наш\w*"
)
_MAX_WINDOWS = 48


def gap(n: int) -> str:
    """Regex source for a separator with up to ``n`` words other than "my" in between."""
    return rf"(?:{S}(?!(?:{_OWN})\b)\w+){{0,{n}}}?{S}"


@dataclass(frozen=True, slots=True)
class Pattern:
    """Phrasings of one rule at one score, and where in a text they can be.

    A match contains one of ``anchors`` and starts at most ``before`` characters
    before it and ends at most ``after`` characters after it. A ``lead`` pattern's
    matches start at an anchor: it is tried there alone, not searched for.
    """

    rule: str
    score: float
    anchors: tuple[str, ...]
    regex: re.Pattern[str]
    before: int
    after: int
    lead: bool

    def search(self, text: str, present: frozenset[str]) -> re.Match[str] | None:
        """The first match in ``text``, given the anchors ``present`` in it."""
        if self.lead:
            return self._match_at_anchors(text, present)
        hits: list[int] = []
        for anchor in self.anchors:
            if anchor not in present:
                continue
            at = text.find(anchor)
            while at >= 0:
                hits.append(at)
                if len(hits) > _MAX_WINDOWS:
                    return self.regex.search(text)
                at = text.find(anchor, at + 1)
        if not hits:
            return None
        hits.sort()
        start, end = hits[0] - self.before, hits[0] + self.after
        for at in hits[1:]:
            if at - self.before > end:
                match = self.regex.search(text, max(0, start), end)
                if match is not None:
                    return match
                start = at - self.before
            end = at + self.after
        return self.regex.search(text, max(0, start), end)

    def _match_at_anchors(self, text: str, present: frozenset[str]) -> re.Match[str] | None:
        for anchor in self.anchors:
            if anchor not in present:
                continue
            at = text.find(anchor)
            while at >= 0:
                match = self.regex.match(text, at)
                if match is not None:
                    return match
                at = text.find(anchor, at + 1)
        return None


def phrases(
    rule: str,
    score: float,
    anchors: str | tuple[str, ...],
    *alternatives: str,
    before: int = 40,
    after: int = 200,
    lead: bool = False,
) -> Pattern:
    """A ``Pattern``; ``anchors`` is a tuple, or one string separated by "|".

    Repeats of words, separators and spaces are bounded here (a word of at most 20
    letters, a separator of at most 10 characters), so that how far a match can
    reach from its anchor is bounded, and ``before`` can be large enough.
    """
    source = "|".join(f"(?:{_bounded(strip_accents(alt))})" for alt in alternatives)
    split = anchors.split("|") if isinstance(anchors, str) else anchors
    pieces = tuple(strip_accents(anchor) for anchor in split)
    return Pattern(rule, score, pieces, re.compile(source), before, after, lead)


_BOUNDS = (
    (r"[\W_]+", r"[\W_]{1,10}"),
    (r"\w+", r"\w{1,20}"),
    (r"\w*", r"\w{0,20}"),
    (r"\W+", r"\W{1,10}"),
    (r"\s+", r"\s{1,10}"),
    (r"\s*", r"\s{0,10}"),
)


def _bounded(source: str) -> str:
    for loose, bound in _BOUNDS:
        source = source.replace(loose, bound)
    return source
