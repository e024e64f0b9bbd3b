"""``seawall guard eval``: the input guard's detection and false-positive rates on a corpus.

The corpus is JSON Lines, one ``{"text": ..., "label": "injection"|"benign",
"source": ...}`` a line (optional ``group``: rows sharing one stay in one fold; optional
``origin``: a finer source for ``--by origin``). Each text goes through the rule checks
and the classifier; it counts as flagged when either does.

Without ``--folds`` the classifier is the shipped one: right for corpora it was not
trained on. With ``--folds K`` it is retrained in memory K times, each time on all folds
but one, and each text is scored by the model that did not see its fold: use this on the
development corpora, which the shipped weights were trained on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from seawall.guard.classifier import ClassifierSettings, ClassifierWeights, InjectionClassifier
from seawall.guard.classifier_training import LabelledText
from seawall.guard.evaluation import format_table, load_corpus, outcomes, per_source

SEED = 7


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``guard``."""
    guard = subparsers.add_parser("guard", help="prompt-injection guard tools")
    actions = guard.add_subparsers(dest="guard_command", metavar="ACTION", required=True)
    evaluate = actions.add_parser(
        "eval",
        help="detection and false-positive rates of the input guard on a labelled corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "--corpus", type=Path, action="append", required=True, help="JSONL corpus (repeatable)"
    )
    evaluate.add_argument(
        "--folds", type=int, help="retrain the classifier per fold and score held-back folds"
    )
    evaluate.add_argument("--seed", type=int, default=SEED, help="fold assignment seed")
    evaluate.add_argument(
        "--by", choices=("source", "origin"), default="source", help="what to report per"
    )
    evaluate.add_argument("--threshold", type=float, help="classifier threshold (default 0.5)")
    evaluate.add_argument(
        "--max-words", type=int, help="words of a long text the classifier reads (default 90)"
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    defaults = ClassifierSettings()
    try:
        settings = ClassifierSettings(
            threshold=defaults.threshold if args.threshold is None else args.threshold,
            max_words=defaults.max_words if args.max_words is None else args.max_words,
        )
        items: list[LabelledText] = []
        for path in args.corpus:
            items.extend(load_corpus(path))
        if args.folds is not None and args.folds < 2:
            raise ValueError("--folds must be at least 2")
        if args.folds and len({item.injection for item in items}) < 2:
            raise ValueError(
                "--folds retrains the classifier: the corpus needs both injection and benign texts"
            )
    except (OSError, ValueError) as exc:
        print(f"seawall guard eval: {exc}", file=sys.stderr)
        return 2
    if not items:
        print("seawall guard eval: the corpus is empty", file=sys.stderr)
        return 2
    if args.folds:
        scores = _held_back_scores(items, settings, args.folds, args.seed)
        method = (
            f"classifier retrained in memory per fold: {args.folds} folds stratified by source "
            f"and label, rows sharing a group kept in one fold (seed {args.seed}); each text "
            "scored by the model trained on the other folds"
        )
    else:
        scores = _shipped_scores(items, ClassifierWeights.load(), settings)
        method = "classifier: the shipped weights (src/seawall/guard/classifier_weights.json)"
    results = outcomes(items, scores, settings.threshold, _rule_ids())
    reports = per_source(results, by=args.by)
    if args.json:
        document = {
            "corpora": [str(path) for path in args.corpus],
            "method": method,
            "threshold": settings.threshold,
            "max_words": settings.max_words,
            "flagged_when": "any rule check found something, or the classifier score >= threshold",
            "reports": [report.as_json() for report in reports],
        }
        print(json.dumps(document, indent=2))
    else:
        print(
            f"{method}; threshold {settings.threshold}, "
            f"at most {settings.max_words} words read per text"
        )
        print("flagged = rule checks OR classifier; Wilson 95% intervals in brackets\n")
        print(format_table(reports))
    return 0


def _shipped_scores(
    items: list[LabelledText], weights: ClassifierWeights, settings: ClassifierSettings
) -> list[float]:
    from seawall.cache.embedder import LocalEmbedder

    classifier = InjectionClassifier(LocalEmbedder(), weights, settings)
    return [classifier.score(item.text) for item in items]


def _held_back_scores(
    items: list[LabelledText], settings: ClassifierSettings, folds: int, seed: int
) -> list[float]:
    from seawall.cache.embedder import LocalEmbedder
    from seawall.guard.classifier_training import embed_corpus, held_back_scores

    embedded = embed_corpus([item.text for item in items], LocalEmbedder())
    return held_back_scores(items, embedded, folds, seed, settings.max_words)


def _rule_ids() -> Callable[[str], Iterable[str]]:
    """The rule checks' ids for a text (the input rules with their default settings)."""
    from seawall.guard.input_rules import InputRules, InputRuleSettings

    rules = InputRules(InputRuleSettings())

    def ids(text: str) -> list[str]:
        return [detection.rule for detection in rules.check_text(text)]

    return ids
