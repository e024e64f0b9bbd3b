"""Prompt-injection patterns, in several languages, run over normalised text.

Each family of phrasings has its own rule id and score, so an operator can act on
"forged chat-template tokens" differently from "someone addressed the AI":

- ``injection.ignore_previous``: ignore / disregard / forget the previous
  instructions, and paraphrases, in English, Spanish, French, German, Italian,
  Portuguese, Chinese and Russian;
- ``injection.new_instructions``: "your new instruction is", "New instructions:";
- ``injection.prompt_leak``: "reveal your system prompt", "print the text above";
- ``injection.persona``: "you are now DAN", developer mode, "an AI with no rules";
- ``injection.role_marker``, ``injection.template_token``, ``injection.delimiter``,
  ``injection.addressed_to_model``, ``injection.decode_and_follow``,
  ``injection.persistence``: see ``injection_markers``;
- ``injection.exfiltration``: sending private data to an outside address.

The scores say how sure a match is an attack: benign look-alikes ("ignore my
previous email", "act as a travel guide", "System: Windows 11") either do not
match or match a weaker variant with a lower score.

Speed: every pattern names anchors, literal pieces each of its matches holds.
Which anchors a text holds is worked out once, in one Aho-Corasick pass; a
pattern whose anchors are absent never runs, and one whose anchors are present
runs only at them (when its matches start there) or in short windows around
them, never over the whole of a long text. All rule checks together cost a few
milliseconds on a 2,000-token prompt on one slow core.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import ahocorasick  # type: ignore[import-not-found]

from seawall.guard.anchored_pattern import Pattern
from seawall.guard.detection import Detection, excerpt
from seawall.guard.injection_markers import (
    ADDRESSED_TO_MODEL,
    DECODE_AND_FOLLOW,
    DELIMITER,
    PERSISTENCE,
    ROLE_MARKER,
    TEMPLATE_TOKEN,
)
from seawall.guard.injection_phrasings import (
    IGNORE_PREVIOUS,
    NEW_INSTRUCTIONS,
    PERSONA,
    PROMPT_LEAK,
)
from seawall.guard.normalise import normalise, strip_accents

PATTERNS: tuple[Pattern, ...] = (
    *IGNORE_PREVIOUS, *NEW_INSTRUCTIONS, *PROMPT_LEAK, *PERSONA, *ROLE_MARKER,
    *TEMPLATE_TOKEN, *DELIMITER, *ADDRESSED_TO_MODEL, *DECODE_AND_FOLLOW, *PERSISTENCE,
)  # fmt: skip

# Exfiltration needs two things near each other: sending somewhere outside, and
# something private to send. It is looked for backwards from the outside address
# or word, which is rarer than the verbs.
_SEND_OUT = re.compile(
    strip_accents(
        r"\b(?:send|e-?mail|forward|post|upload|transmit|exfiltrat|leak|envo[iy]|envi[ae]|invia"
        r"|sende|schick|отправ|перешли)\w*[^\n]{0,120}?(?:[\w.+-]+@[\w-]+\.\w+|https?://"
        r"|\bextern\w*|\besterno\b|\boutside\b|внешн\w*)|(?:发送|發送)[^\n]{0,60}?(?:@|外部)"
    )
)
_PRIVATE = re.compile(
    strip_accents(
        r"\b(?:customer|client|credential|password|api\s+keys?|secrets?|tokens?|environment"
        r"\s+variables|database|personal|private|confidential|order\s+data|données|donnees|datos"
        r"|dati|dados|daten|kunden\w*|clientes|clienti|данны\w*|парол\w*)|客户|用户数据|密码"
    )
)
_OUTSIDE = ("@", "http", "extern", "outside", "esterno", "внешн", "外部")
_SEND_REACH = 200
_PRIVATE_REACH = 150
_MAX_PLACES = 48


def check_injection(text: str) -> list[Detection]:
    """Injection phrasings in ``text``: one detection per rule, at its best score."""
    return check_normalised(normalise(text))


def check_normalised(norm: str) -> list[Detection]:
    """Like ``check_injection``, for text that ``normalise`` has already seen."""
    lined = "\n" + norm
    present = _present(lined)
    best: dict[str, Detection] = {}
    if present:
        for pattern in PATTERNS:
            found = best.get(pattern.rule)
            if found is not None and found.score >= pattern.score:
                continue
            if present.isdisjoint(pattern.anchors):
                continue
            match = pattern.search(lined, present)
            if match is not None:
                best[pattern.rule] = Detection(pattern.rule, pattern.score, excerpt(match.group()))
    if not present.isdisjoint(_OUTSIDE):
        exfiltration = _exfiltration(norm)
        if exfiltration is not None:
            best[exfiltration.rule] = exfiltration
    return list(best.values())


# Which anchors a text holds is the cost every text pays, ordinary traffic above
# all: one Aho-Corasick pass over the text finds all of them at once (about 1 µs on
# a short prompt, where testing each of some 300 anchors with ``in`` took 30).
def _automaton(anchors: tuple[str, ...]) -> Any:
    found = ahocorasick.Automaton()
    for anchor in anchors:
        found.add_word(anchor, anchor)
    found.make_automaton()
    return found


_UNIQUE_ANCHORS = tuple(dict.fromkeys(a for pattern in PATTERNS for a in pattern.anchors))
# The outside addresses that exfiltration is looked for around are found in the same pass.
_ANCHORS = _automaton((*_UNIQUE_ANCHORS, *_OUTSIDE))
_SECOND = itemgetter(1)


def _present(text: str) -> frozenset[str]:
    """The anchors that occur in ``text``."""
    return frozenset(map(_SECOND, _ANCHORS.iter(text)))


def _exfiltration(norm: str) -> Detection | None:
    places: list[int] = []
    for sign in _OUTSIDE:
        at = norm.find(sign)
        while at >= 0 and len(places) < _MAX_PLACES:
            places.append(at)
            at = norm.find(sign, at + 1)
    for at in sorted(places):
        match = _SEND_OUT.search(norm, max(0, at - _SEND_REACH), at + 40)
        if match is None:
            continue
        start, end = match.span()
        if _PRIVATE.search(norm, max(0, start - _PRIVATE_REACH), end + _PRIVATE_REACH):
            return Detection("injection.exfiltration", 0.6, excerpt(match.group()))
    return None
