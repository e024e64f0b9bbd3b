"""The ``guard:`` section: guard profiles, per-route policies, prompt templates,
strikes and automatic revert (docs/guard.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seawall.guard.auto_revert import RevertPolicy
from seawall.guard.output_scan import OutputPolicy
from seawall.guard.strikes import StrikePolicy
from seawall.guard.templates import PromptTemplate

Action = Literal["allow", "flag", "hold", "block"]
ACTIONS: tuple[Action, ...] = ("allow", "flag", "hold", "block")
# How strongly each action acts: a request's action is the strongest its detections call for.
SEVERITY: dict[str, int] = {action: rank for rank, action in enumerate(ACTIONS)}


@dataclass(frozen=True, slots=True)
class GuardProfile:
    """Which checks run on a request's untrusted text and what each finding does.

    ``actions`` maps a rule id, or a family written ``family.*``, to an action; the
    most specific entry wins, then ``default_action``.
    """

    name: str
    max_chars: int = 200_000
    max_tokens: int = 64_000
    patterns: bool = True
    encodings: bool = True
    files: bool = True
    classifier: bool = False
    # A public model asked for a second opinion when the classifier is unsure (None: no judge).
    judge_model: str | None = None
    # Detections scoring below this are ignored (a rule's own score is its certainty).
    min_score: float = 0.5
    default_action: Action = "flag"
    actions: dict[str, Action] = field(default_factory=dict)
    output: OutputPolicy = field(default_factory=OutputPolicy)

    def action_for(self, rule: str) -> Action:
        """What a detection of ``rule`` does under this profile."""
        if rule in self.actions:
            return self.actions[rule]
        family = rule.split(".", 1)[0] + ".*"
        return self.actions.get(family, self.default_action)


def default_profiles() -> dict[str, GuardProfile]:
    """standard: rule checks that flag; strict: rules and the classifier, which block."""
    return {
        "standard": GuardProfile("standard"),
        "strict": GuardProfile(
            "strict",
            max_tokens=16_000,
            classifier=True,
            default_action="block",
            actions={"chars.*": "flag", "unicode.*": "flag", "encoding.blob": "flag"},
            output=OutputPolicy(canary=True, leakage_threshold=0.3),
        ),
    }


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """The guard policy of one public model: its profiles and prompt versions."""

    profile: str | None = None
    # Used while the route is reverted (an attack wave).
    safe_profile: str | None = None
    # A prompt template and the version in use, and the version to revert to.
    template: str | None = None
    version: str | None = None
    safe_version: str | None = None
    # Values of the template's {{ variables }} (over the version's defaults).
    variables: dict[str, str] = field(default_factory=dict)
    # Wrap user content, documents and tool outputs as delimited data (opt-in).
    separation: bool = False


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Prompt-injection defences (``guard:``)."""

    enabled: bool = True
    profiles: dict[str, GuardProfile] = field(default_factory=default_profiles)
    default_profile: str = "standard"
    # A tier's requests use this profile unless their route names one.
    tiers: dict[str, str] = field(default_factory=dict)
    routes: dict[str, RoutePolicy] = field(default_factory=dict)
    # Prompt templates by name, each with its named versions.
    prompts: dict[str, PromptTemplate] = field(default_factory=dict)
    strikes: StrikePolicy = field(default_factory=StrikePolicy)
    # Applies to routes with a safe profile or safe version.
    revert: RevertPolicy = field(default_factory=RevertPolicy)
