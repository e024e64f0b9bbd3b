"""What a guard check found: one rule's finding on a request or an answer."""

from __future__ import annotations

from dataclasses import dataclass

# How much of the offending text a detection may quote (the detection log keeps it).
EXCERPT_CHARS = 80


@dataclass(frozen=True, slots=True)
class Detection:
    """One rule's finding.

    ``rule`` is a stable id, dotted by family (``injection.ignore_previous``,
    ``encoding.base64``, ``length.tokens``, ``file.mismatch``, ``classifier``,
    ``output.canary``); operators configure actions and thresholds by it and the
    metrics and the detection log are labelled with it. ``score`` is how sure the
    rule is, from 0 to 1. ``detail`` says what was found, quoting at most
    ``EXCERPT_CHARS`` characters of the text.
    """

    rule: str
    score: float
    detail: str = ""


def excerpt(text: str) -> str:
    """At most ``EXCERPT_CHARS`` characters of ``text``, on one line."""
    flat = " ".join(text.split())
    if len(flat) <= EXCERPT_CHARS:
        return flat
    return flat[: EXCERPT_CHARS - 1] + "…"
