"""The guard's rule checks on untrusted input: length, injection patterns, encodings, files.

One ``InputRules`` is built at start-up per guard profile and shared by every
request. ``check_text`` runs on each piece of untrusted text on its own (a user
message, a tool output, a RAG passage), so a detection can say which piece it
came from; ``check_length`` runs once on the whole prompt, since limits bound a
request, not its parts; ``check_content_part`` verifies a file or image part.

Every check returns ``Detection``s; what to do about them (allow, flag, block,
hold) is the guard's policy, decided elsewhere from rule ids and scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seawall.guard.detection import Detection
from seawall.guard.encoding_anomalies import AnomalyThresholds, EncodingAnomalies
from seawall.guard.file_content import check_content_part
from seawall.guard.injection_patterns import check_normalised
from seawall.guard.normalise import normalised
from seawall.tokens import TokenCounter, message_text

# A token is at least one byte of UTF-8 (it can be less than one character: emoji
# take several). A text with no more bytes than the token limit cannot exceed it
# and is not counted; UTF-8 takes at most this many bytes per character.
_MAX_BYTES_PER_CHAR = 4


@dataclass(frozen=True, slots=True)
class InputRuleSettings:
    """Which rule families run and where their limits lie (one guard profile).

    The defaults suit a production chat route: generous limits that stop abuse
    (a 100,000-character message, a 32,000-token prompt), every family on, and
    every detection reported (``min_score`` 0); actions decide what matters.
    """

    max_chars: int = 100_000
    max_tokens: int = 32_000
    length_limits: bool = True
    injection_patterns: bool = True
    encoding_anomalies: bool = True
    file_content: bool = True
    # Detections scoring below this are dropped, never reported.
    min_score: float = 0.0
    # Rule ids switched off one by one (say ``chars.special_ratio`` on a code route).
    disabled_rules: frozenset[str] = frozenset()
    anomalies: AnomalyThresholds = field(default_factory=AnomalyThresholds)

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.max_tokens < 1:
            raise ValueError("max_chars and max_tokens must be at least 1")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError("min_score must be between 0 and 1")


class InputRules:
    """The rule checks of one guard profile; built once, shared by all requests."""

    def __init__(self, settings: InputRuleSettings, counter: TokenCounter | None = None) -> None:
        self.settings = settings
        self._counter = counter
        self._anomalies = EncodingAnomalies(settings.anomalies)

    def check_text(self, text: str) -> list[Detection]:
        """Every enabled pattern and anomaly rule on one piece of untrusted text."""
        settings = self.settings
        if not text or not (settings.injection_patterns or settings.encoding_anomalies):
            return []
        view = normalised(text)
        found: list[Detection] = []
        if settings.injection_patterns:
            found.extend(check_normalised(view.text))
        if settings.encoding_anomalies:
            found.extend(self._anomalies.check(text, view))
        return self._keep(found)

    def check_length(self, text: str) -> list[Detection]:
        """``length.chars`` and ``length.tokens`` when ``text`` is over the limits."""
        settings = self.settings
        if not settings.length_limits:
            return []
        chars = len(text)
        if chars > settings.max_chars:
            detail = f"{chars} characters, limit {settings.max_chars}"
            # Counting tokens of an oversized text would cost what the limit saves.
            return self._keep([Detection("length.chars", 1.0, detail)])
        if self._counter is None or chars * _MAX_BYTES_PER_CHAR <= settings.max_tokens:
            return []
        if len(text.encode("utf-8", "surrogatepass")) <= settings.max_tokens:
            return []
        tokens = self._counter.count_text(text)
        if tokens > settings.max_tokens:
            detail = f"{tokens} tokens, limit {settings.max_tokens}"
            return self._keep([Detection("length.tokens", 1.0, detail)])
        return []

    def check_content_part(self, part: dict[str, Any]) -> list[Detection]:
        """A file or image content part, verified by its content (see ``file_content``)."""
        if not self.settings.file_content:
            return []
        return self._keep(check_content_part(part))

    def check_message(self, message: dict[str, Any]) -> list[Detection]:
        """``check_text`` on a chat message's text, ``check_content_part`` on its parts.

        Works for OpenAI and Anthropic message shapes: string content, text parts,
        tool-call arguments and Anthropic tool results count as text.
        """
        found = self.check_text(message_text(message))
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict) or part.get("type") == "text":
                continue  # message_text carried the text parts
            if part.get("type") == "tool_result":
                found.extend(self._tool_result(part.get("content")))
            else:
                found.extend(self.check_content_part(part))
        return found

    def _tool_result(self, content: object) -> list[Detection]:
        if isinstance(content, str):
            return self.check_text(content)
        found: list[Detection] = []
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                found.extend(self.check_text(block["text"]))
            else:
                found.extend(self.check_content_part(block))
        return found

    def _keep(self, found: list[Detection]) -> list[Detection]:
        settings = self.settings
        if not settings.disabled_rules and settings.min_score <= 0.0:
            return found
        return [
            detection
            for detection in found
            if detection.rule not in settings.disabled_rules
            and detection.score >= settings.min_score
        ]
