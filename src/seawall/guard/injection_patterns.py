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
Which anchors a text holds is worked out once, mostly from the set of its words;
a pattern whose anchors are absent never runs, and one whose anchors are present
runs only at them (when its matches start there) or in short windows around
them, never over the whole of a long text. All rule checks together cost a few
milliseconds on a 2,000-token prompt on one slow core.
"""

from __future__ import annotations

import re
from bisect import bisect_left

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
    exfiltration = _exfiltration(norm)
    if exfiltration is not None:
        best[exfiltration.rule] = exfiltration
    return list(best.values())


# Which anchors a text holds is the cost every text pays, so most are found
# without searching the text. Its words (one pass over its bytes) are sorted once;
# an anchor made of words is present if its last word starts a word of the text
# (a binary search) and its other words are words of the text, and then, for
# anchors of several words, if the text holds them side by side. The others
# (symbols, pieces inside words, Chinese) are searched for one by one, the Chinese
# ones only in text with Chinese characters. A short text is simply searched.
_WORD_BYTES = bytes(
    byte if chr(byte).isalnum() or byte >= 0x80 else 0x20 for byte in range(256)
).lower()
_WORDS = re.compile("[a-z0-9\u0400-\u04ff]+(?: [a-z0-9\u0400-\u04ff]+)*")
_CJK = re.compile("[\u3000-\u9fff\uf900-\ufaff]")
_SHORT_TEXT = 2000


def _word_anchor(anchor: str) -> tuple[str, tuple[bytes, ...], bytes] | None:
    """(anchor, its whole words, its last word), or None if it is not made of words."""
    if _WORDS.fullmatch(anchor) is None:
        return None
    *whole, last = anchor.encode().split(b" ")  # UTF-8, as the text's words will be
    return anchor, tuple(whole), last


_UNIQUE_ANCHORS = tuple(dict.fromkeys(a for pattern in PATTERNS for a in pattern.anchors))
_WORD_ANCHORS = tuple(
    parts for anchor in _UNIQUE_ANCHORS if (parts := _word_anchor(anchor)) is not None
)
_LOOSE = tuple(anchor for anchor in _UNIQUE_ANCHORS if _word_anchor(anchor) is None)
_LOOSE_ASCII = tuple(anchor for anchor in _LOOSE if anchor.isascii())
_LOOSE_CJK = tuple(anchor for anchor in _LOOSE if _CJK.search(anchor))
_LOOSE_OTHER = tuple(a for a in _LOOSE if not a.isascii() and _CJK.search(a) is None)


def _present(text: str) -> frozenset[str]:
    """The anchors that occur in ``text``."""
    if len(text) < _SHORT_TEXT:
        return frozenset(anchor for anchor in _UNIQUE_ANCHORS if anchor in text)
    words = set(text.encode("utf-8", "surrogatepass").translate(_WORD_BYTES).split())
    ordered = sorted(words)
    found: set[str] = set()
    for anchor, whole, last in _WORD_ANCHORS:
        at = bisect_left(ordered, last)
        if at == len(ordered) or not ordered[at].startswith(last):
            continue
        if whole and (not words.issuperset(whole) or anchor not in text):
            continue
        found.add(anchor)
    found.update(anchor for anchor in _LOOSE_ASCII if anchor in text)
    if not text.isascii():
        found.update(anchor for anchor in _LOOSE_OTHER if anchor in text)
        if _CJK.search(text):
            found.update(anchor for anchor in _LOOSE_CJK if anchor in text)
    return frozenset(found)


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
