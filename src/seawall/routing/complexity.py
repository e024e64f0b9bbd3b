"""Routing by task complexity: score a chat request from cheap features, pick a model.

A router model (``models: {auto: {router: {cheap: ..., strong: ..., threshold: ...}}}``)
sends each request to a cheap or a strong public model. The score is the sum of
the weighted features below, clamped to [0, 1] and rounded to two decimals, so the
same request always gets the same score and the header shows exactly the number
that was compared with the threshold. Each weight is what its feature adds at
most; a feature that adds at least ``REASON_FLOOR`` is named among the reasons.

Everything here is a few string scans and dictionary lookups: no tokenizer (its
vocabulary costs about 60 MB and a load), no model. Prompt length is estimated
as characters / 4 (quicktok would be exact but costs about 3 us per kilobyte),
and cues and code fences are looked for only in the head and tail of a message, so
a 100 KB prompt costs little more to score than a short one.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

Tier = Literal["cheap", "strong"]

# Prompt length, estimated as characters / CHARS_PER_TOKEN (English averages about 4).
CHARS_PER_TOKEN = 4
# Nothing below SHORT_PROMPT_TOKENS; the full weight from LONG_PROMPT_TOKENS on.
LENGTH_WEIGHT = 0.30
SHORT_PROMPT_TOKENS = 200
LONG_PROMPT_TOKENS = 4000
# Conversation depth: user and assistant messages after the first, full at MANY_TURNS.
TURNS_WEIGHT = 0.10
MANY_TURNS = 12
# Tools offered (and not switched off with tool_choice "none"), or tool results in
# the conversation: an agent step. Forcing a tool call adds FORCED_TOOL_WEIGHT.
TOOLS_WEIGHT = 0.25
FORCED_TOOL_WEIGHT = 0.05
# Structured output: a JSON schema to follow, or just "some JSON".
JSON_SCHEMA_WEIGHT = 0.15
JSON_OBJECT_WEIGHT = 0.05
# A fenced code block anywhere in the conversation.
CODE_WEIGHT = 0.15
# Reasoning cues in the last user message: each distinct strong cue ("step by step",
# "prove", "compare") and each distinct weak one ("why", "how"), up to the cap.
STRONG_CUE_WEIGHT = 0.20
WEAK_CUE_WEIGHT = 0.05
REASONING_CAP = 0.40
# Mathematical notation or vocabulary in the last user message.
MATH_WEIGHT = 0.15
# Several questions or numbered steps in the last user message.
MULTI_PART_WEIGHT = 0.10
MULTI_PART_COUNT = 3
# A long answer asked for (max_tokens / max_completion_tokens), linear between the two.
LONG_ANSWER_WEIGHT = 0.15
SHORT_ANSWER_TOKENS = 1000
LONG_ANSWER_TOKENS = 4000
# The client's own reasoning_effort says how hard the task is.
HIGH_EFFORT_WEIGHT = 0.40
MEDIUM_EFFORT_WEIGHT = 0.20

REASON_FLOOR = 0.05
# Characters of the last user message searched for cues, at its start and at its end:
# instructions sit around the material they are about.
CUE_SCAN_CHARS = 1500


def _words(text: str) -> frozenset[str]:
    """A set of words written as one space-separated string (easier to read and edit)."""
    return frozenset(text.split())


# Cues are whole words looked up in a set, or phrases found with ``in``: both run in
# C, several times faster than one regular expression with alternatives.
_STRONG_WORDS = _words(
    "prove proving proof derive derivation analyze analyse analyzing analysing analysis "
    "compare comparing comparison contrast trade-off trade-offs tradeoff tradeoffs "
    "evaluate evaluating assess critique design designing architect architecture optimize "
    "optimise optimizing optimization debug debugging refactor rigorous rigorously "
    "algorithm step-by-step"
)
_STRONG_PHRASES = (
    " step by step ",
    " pros and cons ",
    " reason through ",
    " think through ",
    " in depth ",
    " in detail ",
    " edge cases ",
    " root cause ",
)
_WEAK_WORDS = _words("why how explain justify")
_WEAK_PHRASES = (" what if ",)
_MATH_WORDS = _words(
    "theorem lemma integral derivative equation equations eigenvalue eigenvalues "
    "eigenvector matrix probability irrational polynomial inequality"
)
_MATH_SYMBOLS = "∫∑∏√∞≤≥≠≈∀∃∈⊂⇒±∂"
_LATEX = ("\\frac", "\\sum", "\\int", "\\sqrt", "\\lim", "\\prod")
# Punctuation becomes a space so that "why?" and "compare," are words; hyphens stay
# ("trade-off").
_SEPARATORS = MappingProxyType(
    str.maketrans(dict.fromkeys("!\"#$%&'()*+,./:;<=>?@[\\]^_`{|}~\t\n\r", " "))
)


@dataclass(frozen=True, slots=True)
class Score:
    """How demanding a request looks: a value in [0, 1] and what contributed."""

    value: float
    reasons: tuple[str, ...]
    prompt_tokens: int


def score(body: dict[str, Any]) -> Score:
    """Score a canonical (OpenAI-shaped) chat request body; pure and deterministic."""
    parts: list[tuple[str, float]] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = []

    chars = 0
    turns = 0
    code = False
    tool_results = False
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _text(message.get("content"))
        chars += len(text)
        role = message.get("role")
        if role in ("user", "assistant"):
            turns += 1
        if role == "user":
            last_user = text
        elif role in ("tool", "function") or message.get("tool_calls"):
            tool_results = True
        if not code and "```" in _scanned(text, lower=False):
            code = True

    prompt_tokens = chars // CHARS_PER_TOKEN
    length = _ramp(prompt_tokens, SHORT_PROMPT_TOKENS, LONG_PROMPT_TOKENS)
    parts.append(("long_prompt", LENGTH_WEIGHT * length))
    parts.append(("many_turns", TURNS_WEIGHT * _ramp(turns - 1, 0, MANY_TURNS)))
    parts.append(("tools", _tools(body, tool_results)))
    parts.append(_response_format(body.get("response_format")))
    parts.append(("code", CODE_WEIGHT if code else 0.0))

    scanned = _scanned(last_user)
    spaced = " " + scanned.translate(_SEPARATORS) + " "
    words = set(spaced.split())
    strong = len(words & _STRONG_WORDS) + sum(phrase in spaced for phrase in _STRONG_PHRASES)
    weak = len(words & _WEAK_WORDS) + sum(phrase in spaced for phrase in _WEAK_PHRASES)
    reasoning = min(REASONING_CAP, STRONG_CUE_WEIGHT * strong + WEAK_CUE_WEIGHT * weak)
    parts.append(("reasoning", reasoning))
    parts.append(("math", MATH_WEIGHT if _has_math(scanned, words) else 0.0))
    pieces = scanned.count("?") + _numbered_lines(scanned)
    parts.append(("multi_part", MULTI_PART_WEIGHT if pieces >= MULTI_PART_COUNT else 0.0))

    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        answer = _ramp(max_tokens, SHORT_ANSWER_TOKENS, LONG_ANSWER_TOKENS)
        parts.append(("long_answer", LONG_ANSWER_WEIGHT * answer))
    effort = body.get("reasoning_effort")
    if effort == "high":
        parts.append(("reasoning_effort", HIGH_EFFORT_WEIGHT))
    elif effort == "medium":
        parts.append(("reasoning_effort", MEDIUM_EFFORT_WEIGHT))

    total = sum(weight for _, weight in parts)
    return Score(
        value=round(min(1.0, total), 2),
        reasons=tuple(name for name, weight in parts if weight >= REASON_FLOOR),
        prompt_tokens=prompt_tokens,
    )


def _text(content: Any) -> str:
    """The text of a message's content, a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _ramp(value: int, low: int, high: int) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear in between."""
    if value <= low:
        return 0.0
    if value >= high:
        return 1.0
    return (value - low) / (high - low)


def _tools(body: dict[str, Any], tool_results: bool) -> float:
    choice = body.get("tool_choice")
    offered = bool(body.get("tools") or body.get("functions")) and choice != "none"
    if not (offered or tool_results):
        return 0.0
    forced = choice == "required" or isinstance(choice, dict)
    return TOOLS_WEIGHT + (FORCED_TOOL_WEIGHT if forced else 0.0)


def _response_format(value: Any) -> tuple[str, float]:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "json_schema":
        return "json_schema", JSON_SCHEMA_WEIGHT
    if kind == "json_object":
        return "json", JSON_OBJECT_WEIGHT
    return "json", 0.0


def _has_math(text: str, words: set[str]) -> bool:
    if not words.isdisjoint(_MATH_WORDS):
        return True
    # The symbols are all outside ASCII, and most prompts are inside it.
    if not text.isascii() and any(symbol in text for symbol in _MATH_SYMBOLS):
        return True
    return "\\" in text and any(command in text for command in _LATEX)


def _numbered_lines(text: str) -> int:
    """Lines that start like "1." or "2)": the parts of a multi-part request."""
    count = 0
    for line in text.split("\n"):
        head = line.lstrip()
        digits = len(head) - len(head.lstrip("0123456789"))
        if 0 < digits < len(head) and head[digits] in ".)":
            count += 1
    return count


def _scanned(text: str, *, lower: bool = True) -> str:
    """The part of ``text`` searched for cues (its head and its tail), lower-cased."""
    if len(text) > 2 * CUE_SCAN_CHARS:
        text = text[:CUE_SCAN_CHARS] + "\n" + text[-CUE_SCAN_CHARS:]
    return text.lower() if lower else text


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Which model a router picked for one request, and why."""

    tier: Tier
    model: str
    score: Score
    # Set when the model the score asked for could not serve and the other one did.
    instead_of: str | None = None

    def describe(self, router: str) -> str:
        """One line for the response header and the request record."""
        reasons = list(self.score.reasons)
        if self.instead_of is not None:
            reasons.append(f"{self.instead_of}_unusable")
        return (
            f"{self.tier} score={self.score.value:.2f} reasons={','.join(reasons) or 'none'} "
            f"model={self.model} router={router}"
        )


@dataclass(frozen=True, slots=True)
class ComplexityPolicy:
    """Send requests scoring at or above ``threshold`` to ``strong``, the rest to ``cheap``."""

    cheap: str
    strong: str
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        if self.cheap == self.strong:
            raise ValueError(f"cheap and strong must be different models, both are {self.cheap!r}")

    def targets(self) -> tuple[str, str]:
        """The public models this policy routes to: cheap, then strong."""
        return (self.cheap, self.strong)

    def decide(self, body: dict[str, Any], serving: Container[str]) -> RouteDecision:
        """Score ``body`` and pick a model; one that cannot serve yields to the other."""
        result = score(body)
        tier: Tier = "strong" if result.value >= self.threshold else "cheap"
        wanted = self.strong if tier == "strong" else self.cheap
        if wanted in serving:
            return RouteDecision(tier, wanted, result)
        other: Tier = "cheap" if tier == "strong" else "strong"
        model = self.cheap if other == "cheap" else self.strong
        if model in serving:
            return RouteDecision(other, model, result, instead_of=tier)
        # Neither can serve: the wanted one answers with the reason (a clear 503).
        return RouteDecision(tier, wanted, result)
