"""Refusal detection: did the model decline to answer?

A refusal is an answer that declines the request instead of doing it. Three signs,
cheapest first: the provider's own ``refusal`` field (OpenAI's structured outputs),
a ``content_filter`` finish, or an opening that declines ("I'm sorry, but I can't
help with that", "As an AI, I cannot ..."). Only the first sentences are read: a
refusal says so at once, while an answer that later mentions what it cannot do is
still an answer. English phrasing only, so far.
"""

from __future__ import annotations

import re

from seawall.monitoring.answer import Answer
from seawall.pipeline.context import RequestContext
from seawall.stores.records import RequestRecord

# How much of the answer's start is read.
_OPENING_CHARS = 240

_APOLOGY = (
    r"(?:i(?:'m| am) (?:so |very |really )?sorry|i apologi[sz]e|unfortunately|sorry)"
    r"[,.!]?\s*(?:but\s+)?"
)
_DECLINE = (
    r"(?:i|we)(?:\s+(?:can(?:'|no)?t|cannot|can not|won'?t|will not|do not|don'?t|"
    r"must (?:decline|refuse)|(?:have|need) to decline)"
    r"|(?:'m|'re|\s+am|\s+are)\s+(?:not able|unable|not allowed|not permitted))"
    r"\s+(?:to\s+)?(?:be able to\s+)?"
    r"(?:help|assist|provide|comply|fulfil+|answer|do that|do this|support|share|create|"
    r"write|generate|engage|discuss|continue|respond)"
)
_AS_AN_AI = (
    r"as an ai(?: language model| assistant)?,?\s+i\s+"
    r"(?:can(?:'|no)?t|cannot|am unable|do not|don'?t)"
)
_REFUSAL = re.compile(
    rf"^\W*(?:{_APOLOGY})?(?:{_DECLINE}|{_AS_AN_AI})"
    rf"|^\W*(?:i(?:'m| am) unable to|i must (?:decline|refuse)|i (?:can(?:'|no)?t|cannot|won'?t)"
    rf" (?:help|assist|comply) with (?:that|this))",
    re.IGNORECASE,
)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})
# Markup an answer may open with: "**I'm sorry**", "> I can't".
_LEAD = " \t\r\n*_#>\"'`"
# How every refusal the pattern knows begins: most answers are ruled out by this alone.
_OPENINGS = ("i ", "i'", "i\u2019", "we ", "we'", "we\u2019", "sorry", "unfortunately", "as an ai")


def is_refusal(answer: Answer) -> bool:
    """Whether ``answer`` declines the request."""
    if answer.refusal or answer.finish_reason == "content_filter":
        return True
    opening = answer.text[:_OPENING_CHARS].lstrip(_LEAD)
    if not opening[:13].lower().startswith(_OPENINGS):
        return False
    return _REFUSAL.search(opening.translate(_APOSTROPHES)) is not None


class RefusalDetector:
    """Marks each answered request's record as a refusal or not (``requests.refused``)."""

    def finished(self, ctx: RequestContext, record: RequestRecord, answer: Answer | None) -> None:
        """Set ``record.refused`` for answers (failures keep None)."""
        if answer is not None and record.status_code < 400:
            record.refused = is_refusal(answer)
