"""The evaluation harness: Wilson intervals, per-source reports, corpora, folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seawall.guard.classifier_training import (
    LabelledText,
    assign_folds,
    fit_logistic,
    operating_point,
)
from seawall.guard.evaluation import (
    Rate,
    format_table,
    load_corpus,
    outcomes,
    per_source,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("hits", "total", "low", "high"),
    [
        # Reference values of the Wilson score interval at 95% (as R's binom.confint gives).
        (0, 10, 0.0, 0.27753),
        (1, 10, 0.01788, 0.40415),
        (5, 10, 0.23659, 0.76341),
        (10, 10, 0.72247, 1.0),
        # With no hits the upper bound is z^2 / (n + z^2).
        (0, 100, 0.0, 0.03699),
    ],
)
def test_wilson_intervals_match_reference_values(
    hits: int, total: int, low: float, high: float
) -> None:
    assert wilson_interval(hits, total) == pytest.approx((low, high), abs=5e-5)


def test_a_rate_of_nothing_has_no_value_and_the_whole_interval() -> None:
    assert Rate(0, 0).value is None
    assert Rate(0, 0).interval == (0.0, 1.0)
    assert Rate(0, 0).text() == "-"
    assert Rate(1, 10).text() == "10.0% [1.8, 40.4]"


def _item(source: str, injection: bool, n: int) -> LabelledText:
    return LabelledText(f"{source} {injection} {n}", injection, source, f"{source}/{n}")


def test_per_source_reports_combine_rules_or_classifier() -> None:
    items = [_item("a", True, n) for n in range(4)] + [_item("a", False, n) for n in range(4)]
    items += [_item("b", True, n) for n in range(2)]
    scores = [0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9]
    # The rules catch the second injection of "a" and nothing benign.
    results = outcomes(
        items, scores, 0.5, lambda text: ["injection.x"] if text == "a True 1" else []
    )
    a, b, everything = per_source(results)
    assert (a.source, b.source, everything.source) == ("a", "b", "all")
    assert (a.detection.hits, a.detection.total) == (2, 4)
    assert (a.false_positives.hits, a.false_positives.total) == (1, 4)
    assert (a.rules_detection.hits, a.classifier_detection.hits) == (1, 1)
    assert a.balanced_accuracy == pytest.approx((0.5 + 0.75) / 2)
    assert b.false_positives.total == 0
    assert b.balanced_accuracy is None, "one label only: no balanced accuracy"
    assert (everything.detection.hits, everything.detection.total) == (4, 6)
    table = format_table([a, b, everything])
    lines = table.splitlines()
    assert "detection [Wilson 95%]" in lines[0]
    assert lines[2].startswith("a ") and "50.0% [15.0, 85.0]" in lines[2]
    assert lines[3].startswith("b ") and "100.0% [34.2, 100.0]" in lines[3]
    json.dumps([report.as_json() for report in (a, b, everything)])


def test_reports_can_be_made_per_origin() -> None:
    items = [
        LabelledText("x", False, "benign", "g1", origin="chat"),
        LabelledText("y", False, "benign", "g2", origin="code"),
    ]
    reports = per_source(outcomes(items, [0.9, 0.1], 0.5), by="origin")
    assert [(r.source, r.false_positives.hits) for r in reports] == [
        ("chat", 1),
        ("code", 0),
        ("all", 1),
    ]


def test_a_corpus_line_without_a_label_names_its_line(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"text": "hi", "label": "benign", "source": "s"}\n'
        '{"text": "yo", "label": "evil", "source": "s"}\n'
    )
    with pytest.raises(ValueError, match=r"c\.jsonl:2"):
        load_corpus(corpus)


def test_folds_are_stratified_and_keep_groups_whole() -> None:
    items = [
        # Near-copies share a group: two rows of one label each.
        LabelledText(f"t{n}", n % 2 == 0, "s", f"group{n % 2}-{n // 4}")
        for n in range(40)
    ] + [LabelledText(f"u{n}", False, "other", f"u{n}") for n in range(10)]
    folds = assign_folds(items, 5, seed=3)
    assert folds == assign_folds(items, 5, seed=3), "deterministic"
    for group in {item.group for item in items}:
        assert len({f for item, f in zip(items, folds, strict=True) if item.group == group}) == 1
    for fold in range(5):
        held = [item for item, f in zip(items, folds, strict=True) if f == fold]
        assert sum(1 for item in held if item.source == "other") == 2
        assert any(item.injection for item in held)


def test_logistic_regression_separates_separable_data() -> None:
    rng = np.random.default_rng(0)
    positives = rng.normal(1.0, 0.3, size=(50, 3)).astype(np.float32)
    negatives = rng.normal(-1.0, 0.3, size=(50, 3)).astype(np.float32)
    features = np.vstack([positives, negatives])
    labels = np.array([1.0] * 50 + [0.0] * 50)
    coefficients, intercept = fit_logistic(features, labels, np.ones(100), penalty=1e-3)
    predicted = (features @ coefficients + intercept) > 0
    assert (predicted == labels.astype(bool)).all()


def test_the_operating_point_flags_at_most_one_percent_of_benign_scores() -> None:
    benign = [i / 1000 for i in range(1000)]
    threshold = operating_point(benign)
    assert sum(score >= threshold for score in benign) <= 10
    assert sum(score >= threshold for score in benign) == 10
