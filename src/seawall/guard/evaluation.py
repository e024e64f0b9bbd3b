"""How well the input guard separates injections from benign prompts, per source.

For each source of a labelled corpus: the detection rate (injections flagged), the
false-positive rate (benign texts flagged) and the balanced accuracy (the mean of the
detection rate and the benign pass rate), each rate with its Wilson 95% interval,
which stays inside [0, 1] and is honest at 0 or 100% on small samples, where the
normal approximation is not. A text counts as flagged when a rule check found anything
or the classifier's score reached its threshold; the rules' and the classifier's own
rates are reported beside the combined one.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seawall.guard.classifier_training import LabelledText

# The 97.5th percentile of the standard normal: a two-sided 95% interval.
Z_95 = 1.959963984540054
LABELS = {"injection": True, "benign": False}


def wilson_interval(hits: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / total``; (0, 1) when ``total`` is 0."""
    if total == 0:
        return 0.0, 1.0
    p = hits / total
    z2 = z * z
    centre = (p + z2 / (2 * total)) / (1 + z2 / total)
    half = z / (1 + z2 / total) * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Rate:
    """``hits`` out of ``total``, with its Wilson 95% interval."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        """The proportion, or None when there is nothing to count."""
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float]:
        """The Wilson 95% interval."""
        return wilson_interval(self.hits, self.total)

    def as_json(self) -> dict[str, Any]:
        """Counts, proportion and interval, as plain JSON."""
        low, high = self.interval
        return {
            "hits": self.hits,
            "total": self.total,
            "rate": self.value,
            "wilson_95": [round(low, 4), round(high, 4)] if self.total else None,
        }

    def text(self) -> str:
        """``97.5% [92.8, 99.1]``, or ``-`` when there is nothing to count."""
        if not self.total:
            return "-"
        low, high = self.interval
        return f"{100 * self.hits / self.total:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the guard made of one corpus text."""

    item: LabelledText
    rules: tuple[str, ...]
    score: float
    threshold: float

    @property
    def by_rules(self) -> bool:
        """A rule check found something."""
        return bool(self.rules)

    @property
    def by_classifier(self) -> bool:
        """The classifier's score reached the threshold."""
        return self.score >= self.threshold

    @property
    def flagged(self) -> bool:
        """The guard as a whole flagged the text."""
        return self.by_rules or self.by_classifier


@dataclass(frozen=True, slots=True)
class SourceReport:
    """One source's rates: the whole guard's, then the rules' and the classifier's alone."""

    source: str
    detection: Rate
    false_positives: Rate
    rules_detection: Rate
    rules_false_positives: Rate
    classifier_detection: Rate
    classifier_false_positives: Rate

    @property
    def balanced_accuracy(self) -> float | None:
        """Mean of detection and benign pass rates; None unless the source has both labels."""
        detected, flagged = self.detection.value, self.false_positives.value
        if detected is None or flagged is None:
            return None
        return (detected + 1.0 - flagged) / 2

    def as_json(self) -> dict[str, Any]:
        """Every rate as JSON."""
        return {
            "source": self.source,
            "detection": self.detection.as_json(),
            "false_positives": self.false_positives.as_json(),
            "balanced_accuracy": self.balanced_accuracy,
            "rules": {
                "detection": self.rules_detection.as_json(),
                "false_positives": self.rules_false_positives.as_json(),
            },
            "classifier": {
                "detection": self.classifier_detection.as_json(),
                "false_positives": self.classifier_false_positives.as_json(),
            },
        }


def load_corpus(path: Path) -> list[LabelledText]:
    """Read a JSONL corpus: ``text``, ``label`` (injection or benign), ``source`` on each line.

    An optional ``group`` keeps near-copies in one fold (default: the text itself); an
    optional ``origin`` names a finer source for ``--by origin``.
    """
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                label = LABELS[row["label"]]
                text, source = row["text"], row["source"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{number}: each line needs text, label "
                    f"(injection or benign) and source: {exc}"
                ) from exc
            if not isinstance(text, str) or not isinstance(source, str):
                raise ValueError(f"{path}:{number}: text and source must be strings")
            group = str(row.get("group") or text)
            origin = str(row.get("origin") or source)
            items.append(LabelledText(text, label, source, f"{source}/{group}", origin))
    return items


def outcomes(
    items: Sequence[LabelledText],
    scores: Sequence[float],
    threshold: float,
    rules: Callable[[str], Iterable[str]] | None = None,
) -> list[Outcome]:
    """Each text's outcome from its classifier score and, when given, the rule ids it hit."""
    return [
        Outcome(item, tuple(rules(item.text)) if rules else (), score, threshold)
        for item, score in zip(items, scores, strict=True)
    ]


def per_source(results: Sequence[Outcome], by: str = "source") -> list[SourceReport]:
    """A report per source (or per ``origin``), sorted by name, then one for all of them."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for result in results:
        groups[getattr(result.item, by)].append(result)
    reports = [_report(name, groups[name]) for name in sorted(groups)]
    if len(groups) > 1:
        reports.append(_report("all", list(results)))
    return reports


def reports_from_scores(
    items: Sequence[LabelledText], scores: Sequence[float], threshold: float
) -> list[SourceReport]:
    """Per-source reports of the classifier alone."""
    return per_source(outcomes(items, scores, threshold))


def format_table(reports: Sequence[SourceReport]) -> str:
    """The reports as a fixed-width table: the whole guard, then each layer."""
    width = max([len("source"), *(len(r.source) for r in reports)])
    header = (
        f"{'source':<{width}}  {'inj.':>5}  {'detection [Wilson 95%]':<24}  "
        f"{'benign':>6}  {'false pos. [Wilson 95%]':<24}  {'bal. acc.':>9}  "
        f"{'rules det. / FP':<17}  {'classifier det. / FP':<20}"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        balanced = r.balanced_accuracy
        lines.append(
            f"{r.source:<{width}}  {r.detection.total:>5}  {r.detection.text():<24}  "
            f"{r.false_positives.total:>6}  {r.false_positives.text():<24}  "
            f"{'-' if balanced is None else f'{100 * balanced:.1f}%':>9}  "
            f"{_pair(r.rules_detection, r.rules_false_positives):<17}  "
            f"{_pair(r.classifier_detection, r.classifier_false_positives):<20}"
        )
    return "\n".join(lines)


def _pair(detection: Rate, false_positives: Rate) -> str:
    def short(rate: Rate) -> str:
        return "-" if rate.value is None else f"{100 * rate.value:.1f}%"

    return f"{short(detection)} / {short(false_positives)}"


def _report(name: str, results: Sequence[Outcome]) -> SourceReport:
    injections = [r for r in results if r.item.injection]
    benign = [r for r in results if not r.item.injection]

    def rate(group: list[Outcome], hit: Callable[[Outcome], bool]) -> Rate:
        return Rate(sum(1 for r in group if hit(r)), len(group))

    return SourceReport(
        source=name,
        detection=rate(injections, lambda r: r.flagged),
        false_positives=rate(benign, lambda r: r.flagged),
        rules_detection=rate(injections, lambda r: r.by_rules),
        rules_false_positives=rate(benign, lambda r: r.by_rules),
        classifier_detection=rate(injections, lambda r: r.by_classifier),
        classifier_false_positives=rate(benign, lambda r: r.by_classifier),
    )
