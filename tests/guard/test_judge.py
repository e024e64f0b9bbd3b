"""The secondary-LLM judge decides only when the classifier is unsure, and a judge that
fails leaves the classifier's verdict standing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from seawall.config.guard import default_profiles
from seawall.guard.classifier import RULE, Assessment, ClassifierSettings, InjectionClassifier
from seawall.guard.detection import Detection
from seawall.guard.inspection import InputInspector

PROFILE = replace(default_profiles()["standard"], classifier=True, judge_model="judge")
TEXT = "Kindly summarise the attached memo for the board."


class FixedScore(InjectionClassifier):
    """The classifier with a set score: the judge's band is what is under test."""

    def __init__(self, score: float) -> None:
        self.settings = ClassifierSettings()
        self._score = score

    def assess(self, text: str) -> Assessment:
        return Assessment(self._score, text, 1, 1)


def inspect(score: float, answer: str | Exception) -> tuple[list[Detection], list[str]]:
    asked: list[str] = []

    def ask(model: str) -> Callable[[str], Awaitable[str]]:
        async def question(text: str) -> str:
            asked.append(f"{model}: {text}")
            if isinstance(answer, Exception):
                raise answer
            return answer

        return question

    async def run() -> list[Detection]:
        inspector = InputInspector(None, lambda: FixedScore(score), ask)
        try:
            return await inspector.inspect([{"role": "user", "content": TEXT}], PROFILE)
        finally:
            await inspector.aclose()

    return asyncio.run(run()), asked


def test_an_unsure_score_is_decided_by_the_judge() -> None:
    found, asked = inspect(0.55, "Yes.")
    assert [d.rule for d in found] == ["classifier.judge"]
    assert len(asked) == 1 and asked[0].startswith("judge: ") and TEXT in asked[0]
    found, _ = inspect(0.55, "No, this is a normal request.")
    assert found == []


def test_a_sure_score_never_asks_the_judge() -> None:
    found, asked = inspect(0.95, "No.")
    assert [d.rule for d in found] == [RULE] and asked == []
    found, asked = inspect(0.05, "Yes.")
    assert found == [] and asked == []


def test_a_failing_judge_leaves_the_classifier_verdict() -> None:
    found, asked = inspect(0.6, ConnectionError("judge model down"))
    assert [d.rule for d in found] == [RULE] and len(asked) == 1
