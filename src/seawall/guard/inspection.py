"""The input side of the guard: which parts of a chat request are untrusted, and
what the checks a profile turns on find in them.

Untrusted: what end users and the world wrote, i.e. ``user`` messages, ``tool`` and
``function`` results (documents fetched, pages read), and the files and images in
them. The application's own ``system``/``developer`` messages and the assistant's
earlier turns are the application's, so they are not checked (their length counts
toward the length limits all the same).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from seawall.config.guard import GuardProfile
from seawall.guard.classifier import AskModel, InjectionClassifier, LlmJudge
from seawall.guard.detection import Detection
from seawall.guard.input_rules import InputRules, InputRuleSettings
from seawall.tokens import TokenCounter

logger = logging.getLogger(__name__)

_UNTRUSTED_ROLES = frozenset({"user", "tool", "function"})
# Above this many characters the rule checks run off the event loop too.
_INLINE_CHARS = 16_000


@dataclass(slots=True)
class Untrusted:
    """The untrusted texts and non-text parts of one request."""

    texts: list[str] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    chars: int = 0


def untrusted(messages: Iterable[Any]) -> Untrusted:
    """What end users and tools put in ``messages`` (OpenAI chat shape)."""
    found = Untrusted()
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in _UNTRUSTED_ROLES:
            continue
        content = message.get("content")
        if isinstance(content, str):
            found.texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                text = part.get("text")
                if part.get("type") == "text" and isinstance(text, str):
                    found.texts.append(text)
                else:
                    found.parts.append(part)
    found.chars = sum(len(text) for text in found.texts)
    return found


class InputInspector:
    """Runs a profile's input checks; the classifier on a thread of its own."""

    def __init__(
        self,
        counter: TokenCounter | None = None,
        classifier: Callable[[], InjectionClassifier] | None = None,
        ask: Callable[[str], AskModel] | None = None,
    ) -> None:
        # Asks a judge model (by public model name) a question; None: no judge.
        self._ask = ask
        self._counter = counter
        # Built on first use: loading the embedder costs about a second and 90 MB.
        self._make_classifier = classifier
        self._classifier: InjectionClassifier | None = None
        self._rules: dict[tuple[int, int, bool, bool, bool], InputRules] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seawall-guard")

    async def inspect(self, messages: Iterable[Any], profile: GuardProfile) -> list[Detection]:
        """Every finding of ``profile``'s checks at or above its ``min_score``."""
        found = untrusted(messages)
        if not found.texts and not found.parts:
            return []
        if found.chars > _INLINE_CHARS:
            loop = asyncio.get_running_loop()
            detections = await loop.run_in_executor(
                self._executor, self._rule_checks, found, profile
            )
        else:
            detections = self._rule_checks(found, profile)
        if profile.classifier and found.texts and self._make_classifier is not None:
            detections += await self._classified("\n\n".join(found.texts), profile)
        return [d for d in detections if d.score >= profile.min_score]

    async def _classified(self, text: str, profile: GuardProfile) -> list[Detection]:
        """The classifier's verdict, or the judge's when the profile has one and the
        classifier is unsure."""
        loop = asyncio.get_running_loop()
        classifier = await loop.run_in_executor(self._executor, self._classifier_now)
        assessment = await loop.run_in_executor(self._executor, classifier.assess, text)
        if profile.judge_model is not None and self._ask is not None:
            judge = LlmJudge(self._ask(profile.judge_model))
            try:
                judged = await judge.check(text, assessment.score)
            except Exception as exc:
                # A judge that cannot answer leaves the classifier's verdict standing.
                logger.warning("the guard's judge %s failed: %s", profile.judge_model, exc)
                judged = None
            if judged is not None:
                return judged
        return classifier.verdict(assessment)

    def _rule_checks(self, found: Untrusted, profile: GuardProfile) -> list[Detection]:
        rules = self._rules_of(profile)
        detections = rules.check_length("\n\n".join(found.texts))
        for text in found.texts:
            detections += rules.check_text(text)
        for part in found.parts:
            detections += rules.check_content_part(part)
        return detections

    def _rules_of(self, profile: GuardProfile) -> InputRules:
        key = (
            profile.max_chars,
            profile.max_tokens,
            profile.patterns,
            profile.encodings,
            profile.files,
        )
        rules = self._rules.get(key)
        if rules is None:
            settings = InputRuleSettings(
                max_chars=profile.max_chars,
                max_tokens=profile.max_tokens,
                injection_patterns=profile.patterns,
                encoding_anomalies=profile.encodings,
                file_content=profile.files,
            )
            rules = self._rules[key] = InputRules(settings, self._counter)
        return rules

    def _classifier_now(self) -> InjectionClassifier:
        if self._classifier is None:
            assert self._make_classifier is not None
            self._classifier = self._make_classifier()
        return self._classifier

    async def aclose(self) -> None:
        """Stop the checks' thread."""
        await asyncio.to_thread(self._executor.shutdown, True, cancel_futures=True)
