"""Train the guard's injection classifier on the development corpora and ship its weights.

    .venv/bin/python scripts/train_guard_classifier.py            # data/guard/*.jsonl
    .venv/bin/python scripts/train_guard_classifier.py --folds 5 --cache /tmp/guard-vectors.npz

Deterministic (seeded folds, Newton's method). First it reports the k-fold scores,
every text scored by a model that never saw its fold (the folds are stratified by source
and label and keep near-copies together), then it trains on everything and writes
``src/seawall/guard/classifier_weights.json`` with what it was trained on. Embedding the
corpora takes a few minutes on one core; ``--cache`` keeps the vectors between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from seawall.cache.embedder import LocalEmbedder
from seawall.guard import text_windows
from seawall.guard.classifier import WEIGHTS_FILE, ClassifierSettings, ClassifierWeights
from seawall.guard.classifier_training import (
    EmbeddedText,
    LabelledText,
    attach,
    embed_corpus,
    held_back_scores,
    train,
)
from seawall.guard.evaluation import format_table, load_corpus, reports_from_scores

ROOT = Path(__file__).resolve().parents[1]
CORPORA = sorted((ROOT / "data" / "guard").glob("*.jsonl"))
SEED = 7
# What the window cutting depends on: a cache made under other settings is not reused.
_WINDOWS = (
    f"words {text_windows.WINDOW_WORDS}/{text_windows.OVERLAP_WORDS}/"
    f"{text_windows.MIN_WINDOW_WORDS}/{text_windows.MAX_FRAGMENT_SHARE}"
)


def main(argv: list[str] | None = None) -> int:
    """Cross-validate, then train on everything and write the weights."""
    parser = argparse.ArgumentParser(description="Train the guard's injection classifier.")
    parser.add_argument("--corpus", type=Path, action="append", help="JSONL corpus (repeatable)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--cache", type=Path, help="reuse window vectors stored in this .npz")
    args = parser.parse_args(argv)
    corpora = args.corpus or CORPORA
    items: list[LabelledText] = []
    for path in corpora:
        items.extend(load_corpus(path))
    settings = ClassifierSettings()
    started = time.perf_counter()
    embedded = _embedded(items, args.cache)
    print(
        f"embedded {sum(len(e.windows) for e in embedded)} windows of {len(items)} texts "
        f"in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    scores = held_back_scores(items, embedded, args.folds, SEED, settings.max_words)
    reports = reports_from_scores(items, scores, settings.threshold)
    print(
        f"held-back folds (k={args.folds}, seed {SEED}), threshold {settings.threshold}, "
        "the classifier alone (the rule columns are not run here: `seawall guard eval "
        "--folds 5` runs both):"
    )
    print(format_table(reports))
    weights = train(items, embedded, max_words=settings.max_words)
    final = ClassifierWeights(
        coefficients=weights.coefficients,
        intercept=weights.intercept,
        lexicon=weights.lexicon,
        metadata={
            **weights.metadata,
            "trained_by": "scripts/train_guard_classifier.py",
            "corpora": {
                path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path): (
                    hashlib.sha256(path.read_bytes()).hexdigest()
                )
                for path in corpora
            },
            "texts": len(items),
            "injections": sum(item.injection for item in items),
            "held_back_folds": args.folds,
            "seed": SEED,
            "held_back": [report.as_json() for report in reports],
        },
    )
    final.save(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _embedded(items: list[LabelledText], cache: Path | None) -> list[EmbeddedText]:
    """Embed every window, or reuse the cached vectors of exactly these texts and windows."""
    key = hashlib.sha256(
        "\x00".join([_WINDOWS, *(item.text for item in items)]).encode()
    ).hexdigest()
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            found = [text_windows.words(item.text) for item in items]
            return attach(found, [text_windows.split(w) for w in found], stored["vectors"])

    def progress(done: int, total: int) -> None:
        print(f"\rembedding {done}/{total} windows", end="", file=sys.stderr)

    embedded = embed_corpus([item.text for item in items], LocalEmbedder(), progress)
    print(file=sys.stderr)
    if cache is not None:
        np.savez(cache, key=np.array(key), vectors=np.concatenate([e.vectors for e in embedded]))
    return embedded


if __name__ == "__main__":
    sys.exit(main())
