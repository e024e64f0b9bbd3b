"""Refusal detection: declining answers are refusals, answers that mention limits are not."""

from __future__ import annotations

import pytest

from seawall.monitoring.answer import Answer
from seawall.monitoring.refusal import is_refusal

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I\u2019m sorry, but I can\u2019t assist with that request.",
    "Sorry, I cannot provide instructions for making weapons.",
    "I cannot help with that.",
    "I can't comply with this request.",
    "I won't be able to help with creating malware.",
    "I am unable to provide that information.",
    "I'm not able to share personal data about private individuals.",
    "As an AI language model, I cannot browse the internet.",
    "Unfortunately, I can't assist with that.",
    "I must decline to write that.",
    "  I apologize, but I cannot fulfill this request.",
]
ANSWERS = [
    "Paris is the capital of France.",
    "Sure! Here is a poem about the sea.",
    "The function can't handle empty lists, so check the length first.",
    "You cannot divide by zero; the result is undefined.",
    "I can help with that: first, open the settings page.",
    "Here are the steps. Note that I can't guarantee the prices are current.",
    "Sorry to hear about your loss. Here is how to file the claim: ...",
    "I don't know the exact number, but estimates put it near 8 billion.",
    "",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_declining_openings_are_refusals(text: str) -> None:
    assert is_refusal(Answer(text=text))


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_that_mention_what_cannot_be_done_are_not_refusals(text: str) -> None:
    assert not is_refusal(Answer(text=text))


def test_the_providers_refusal_field_and_content_filter_count_as_refusals() -> None:
    assert is_refusal(Answer(text="", refusal=True))
    assert is_refusal(Answer(text="Partial answ", finish_reason="content_filter"))
    assert not is_refusal(Answer(text="A whole answer.", finish_reason="stop"))
