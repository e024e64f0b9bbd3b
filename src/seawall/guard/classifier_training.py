"""Training the injection classifier, and scoring it on folds it was not trained on.

Used by ``scripts/train_guard_classifier.py`` (the shipped weights) and by
``seawall guard eval --folds K`` (retrained per fold, in memory). Everything is numpy
and deterministic: the fold assignment uses a seeded generator and the fit is Newton's
method, which has no randomness.

The model is fitted on windows, not texts (see ``seawall.guard.classifier``). Every
window of a benign text is a negative. An injection text longer than one window is a
bag with at least one injected window but unknown which: its positive is first the window
the lexicon rates highest, then, after a first fit, the window that fit scores highest
(one round of multiple-instance learning). Each label carries half the total weight,
shared equally by the sources that have it, then by their texts, then by a text's windows,
so no source or long text outweighs the others.

Everything a fit chooses is chosen from its own training set: the L2 penalty (from
``PENALTIES``) and how benign texts share their weight are picked by an inner 3-fold
cross-validation on that set, and so is the operating point: the lowest score that keeps
the inner folds' false positives at ``FALSE_POSITIVE_TARGET``. The intercept is shifted
so that this point is a score of 0.5. An outer held-back fold never influences its own
model.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seawall.guard import text_windows
from seawall.guard.classifier import (
    DEFAULT_MAX_WORDS,
    DIMENSIONS,
    ClassifierWeights,
    Embedder,
)
from seawall.guard.text_windows import Window, Words

PENALTIES = (1e-2, 1e-3, 1e-4, 1e-5)
INNER_FOLDS = 3
# The operating point: at most this share of the training set's benign texts flagged on
# inner folds (half the 2% the guard is held to, for the rules' share and for chance).
FALSE_POSITIVE_TARGET = 0.01
MIN_THRESHOLD = 0.05
MAX_THRESHOLD = 0.995
# Words kept in the window-choosing lexicon: the most injection-typical ones.
LEXICON_SIZE = 400
LEXICON_MIN_SETS = 3
EMBED_BATCH = 64

FloatMatrix = npt.NDArray[np.float32]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LabelledText:
    """One corpus row: the text, whether it is an injection, its source and its fold group."""

    text: str
    injection: bool
    source: str
    group: str
    origin: str = ""


@dataclass(frozen=True, slots=True)
class EmbeddedText:
    """A text's words, every window of it and every window's vector."""

    words: Words
    windows: tuple[Window, ...]
    vectors: FloatMatrix


def embed_corpus(
    texts: Sequence[str], embedder: Embedder, progress: Progress | None = None
) -> list[EmbeddedText]:
    """Cut every text into windows and embed them all, in batches."""
    found = [text_windows.words(text) for text in texts]
    split = [text_windows.split(words) for words in found]
    flat = [window.text for pieces in split for window in pieces]
    rows: list[FloatMatrix] = []
    for start in range(0, len(flat), EMBED_BATCH):
        rows.append(embedder.embed_many(flat[start : start + EMBED_BATCH]))
        if progress is not None:
            progress(min(start + EMBED_BATCH, len(flat)), len(flat))
    vectors = np.concatenate(rows) if rows else np.zeros((0, DIMENSIONS), dtype=np.float32)
    return attach(found, split, vectors)


def attach(
    found: Sequence[Words], split: Sequence[Sequence[Window]], vectors: FloatMatrix
) -> list[EmbeddedText]:
    """Give each text its windows' rows of ``vectors`` (all windows, in order)."""
    embedded, offset = [], 0
    for words, pieces in zip(found, split, strict=True):
        count = len(pieces)
        embedded.append(EmbeddedText(words, tuple(pieces), vectors[offset : offset + count]))
        offset += count
    return embedded


@dataclass(frozen=True, slots=True)
class Options:
    """The choices a fit needs: L2 penalty and how benign texts share their label's weight."""

    penalty: float
    # "source": each benign source weighs the same; "text": each benign text does.
    benign_weighting: str


CANDIDATES = tuple(Options(p, w) for w in ("source", "text") for p in PENALTIES)


def train(
    items: Sequence[LabelledText],
    embedded: Sequence[EmbeddedText],
    max_words: int = DEFAULT_MAX_WORDS,
    options: Options | None = None,
) -> ClassifierWeights:
    """Fit a classifier on ``items`` alone, choosing its options and operating point from them.

    The options come from inner cross-validation on ``items`` (``choose_options``); the
    intercept is then shifted so that a score of 0.5 sits at the operating point those
    inner folds chose (see ``operating_point``).
    """
    _require_both_labels(items)
    if options is None:
        options, threshold = choose_options(items, embedded, max_words)
    else:
        threshold = 0.5
    weights = fit(items, embedded, options)
    shift = math.log(threshold / (1.0 - threshold))
    return ClassifierWeights(
        coefficients=weights.coefficients,
        intercept=weights.intercept - shift,
        lexicon=weights.lexicon,
        metadata={
            "l2_penalty": options.penalty,
            "benign_weighting": options.benign_weighting,
            "operating_point": round(threshold, 6),
        },
    )


def fit(
    items: Sequence[LabelledText],
    embedded: Sequence[EmbeddedText],
    options: Options,
) -> ClassifierWeights:
    """One fit with fixed options: two rounds of window selection for bags, then the lexicon."""
    first = _text_lexicon(items, embedded)
    positives = [_lexicon_pick(e, first) for e in embedded]
    coefficients, intercept = _fit_windows(items, embedded, positives, options)
    positives = [int(np.argmax(e.vectors @ coefficients)) if e.windows else 0 for e in embedded]
    coefficients, intercept = _fit_windows(items, embedded, positives, options)
    lexicon = _window_lexicon(items, embedded, positives)
    return ClassifierWeights(
        coefficients=coefficients.astype(np.float32),
        intercept=intercept,
        lexicon=lexicon,
    )


def score_embedded(weights: ClassifierWeights, text: EmbeddedText, max_words: int) -> float:
    """The score ``InjectionClassifier`` gives this text, from its precomputed vectors."""
    if not text.windows:
        return 0.0
    chosen = text_windows.choose(text.windows, text.words, weights.lexicon, max_words)
    index = {(w.start, w.end): i for i, w in enumerate(text.windows)}
    rows = text.vectors[[index[(w.start, w.end)] for w in chosen]]
    return float(np.max(weights.probabilities(rows)))


def assign_folds(items: Sequence[LabelledText], folds: int, seed: int) -> list[int]:
    """A fold per item: stratified by source and label, each group kept whole in one fold."""
    if folds < 2:
        raise ValueError("at least 2 folds are needed")
    strata: dict[tuple[str, bool], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, item in enumerate(items):
        strata[(item.source, item.injection)][item.group].append(index)
    rng = np.random.default_rng(seed)
    assigned = [0] * len(items)
    next_fold = 0
    for key in sorted(strata):
        groups = sorted(strata[key])
        for position in rng.permutation(len(groups)):
            for index in strata[key][groups[position]]:
                assigned[index] = next_fold
            next_fold = (next_fold + 1) % folds
    return assigned


def held_back_scores(
    items: Sequence[LabelledText],
    embedded: Sequence[EmbeddedText],
    folds: int,
    seed: int,
    max_words: int,
    progress: Progress | None = None,
) -> list[float]:
    """Each item's score from a model trained (options and operating point too) on other folds."""
    assigned = assign_folds(items, folds, seed)
    scores = [math.nan] * len(items)
    for fold in range(folds):
        train_at = [i for i, f in enumerate(assigned) if f != fold]
        test_at = [i for i, f in enumerate(assigned) if f == fold]
        if not test_at:
            continue
        weights = train(
            [items[i] for i in train_at], [embedded[i] for i in train_at], max_words=max_words
        )
        for i in test_at:
            scores[i] = score_embedded(weights, embedded[i], max_words)
        if progress is not None:
            progress(fold + 1, folds)
    return scores


def choose_options(
    items: Sequence[LabelledText],
    embedded: Sequence[EmbeddedText],
    max_words: int,
) -> tuple[Options, float]:
    """The candidate, and its operating point, with the best inner-fold detection.

    Each candidate is scored on ``INNER_FOLDS`` folds of ``items``; its operating point
    is the lowest score threshold that keeps inner-fold false positives (all benign
    texts pooled) at or under ``FALSE_POSITIVE_TARGET``, and it is judged by the mean,
    over injection sources, of the detection rate at that point.
    """
    assigned = assign_folds(items, INNER_FOLDS, seed=1)
    best: tuple[float, Options, float] | None = None
    for options in CANDIDATES:
        scores = [math.nan] * len(items)
        for fold in range(INNER_FOLDS):
            train_at = [i for i, f in enumerate(assigned) if f != fold]
            subset = [items[i] for i in train_at]
            if len({item.injection for item in subset}) < 2:
                continue
            weights = fit(subset, [embedded[i] for i in train_at], options)
            for i in (i for i, f in enumerate(assigned) if f == fold):
                scores[i] = score_embedded(weights, embedded[i], max_words)
        threshold = operating_point(
            [s for item, s in zip(items, scores, strict=True) if not item.injection]
        )
        detection = _mean_detection(items, scores, threshold)
        if best is None or detection > best[0]:
            best = (detection, options, threshold)
    if best is None:
        raise ValueError("no candidate could be fitted")
    return best[1], best[2]


def operating_point(benign_scores: Sequence[float]) -> float:
    """The lowest threshold flagging at most ``FALSE_POSITIVE_TARGET`` of these benign scores."""
    ranked = sorted((s for s in benign_scores if not math.isnan(s)), reverse=True)
    if not ranked:
        return 0.5
    allowed = int(FALSE_POSITIVE_TARGET * len(ranked))
    if allowed >= len(ranked):
        return MIN_THRESHOLD
    # Just above the first benign score that must not be flagged.
    return min(MAX_THRESHOLD, max(MIN_THRESHOLD, math.nextafter(ranked[allowed], 1.0)))


def _mean_detection(
    items: Sequence[LabelledText], scores: Sequence[float], threshold: float
) -> float:
    hits: dict[str, list[bool]] = defaultdict(list)
    for item, score in zip(items, scores, strict=True):
        if item.injection and not math.isnan(score):
            hits[item.source].append(score >= threshold)
    return float(np.mean([np.mean(v) for v in hits.values()])) if hits else 0.0


def _require_both_labels(items: Sequence[LabelledText]) -> None:
    if len({item.injection for item in items}) < 2:
        raise ValueError("training needs both injection and benign texts")


def fit_lexicon(
    positive: Sequence[Sequence[str]], negative: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Smoothed log-odds of a word appearing in a positive rather than a negative word set.

    Each distinct set counts once, and only words found in at least ``LEXICON_MIN_SETS``
    positive sets are kept: words that one attack template repeats rank nothing.
    """
    counts: list[Counter[str]] = []
    totals: list[int] = []
    for sets in (positive, negative):
        seen = {frozenset(words) for words in sets}
        counts.append(Counter(word for words in seen for word in words))
        totals.append(len(seen))
    odds = {
        word: math.log((count + 1) / (totals[0] + 2))
        - math.log((counts[1][word] + 1) / (totals[1] + 2))
        for word, count in counts[0].items()
        if count >= LEXICON_MIN_SETS
    }
    top = sorted((w for w in odds if odds[w] > 0), key=lambda w: (-odds[w], w))[:LEXICON_SIZE]
    return {word: round(odds[word], 4) for word in top}


def _text_lexicon(
    items: Sequence[LabelledText], embedded: Sequence[EmbeddedText]
) -> dict[str, float]:
    """A first lexicon from whole texts, a fold group's injections pooled as one set."""
    groups: dict[str, list[str]] = defaultdict(list)
    negative = []
    for item, text in zip(items, embedded, strict=True):
        if item.injection:
            groups[item.group].extend(text.words.lowered)
        else:
            negative.append(text.words.lowered)
    return fit_lexicon(list(groups.values()), negative)


def _window_lexicon(
    items: Sequence[LabelledText], embedded: Sequence[EmbeddedText], positives: Sequence[int]
) -> dict[str, float]:
    """The shipped lexicon: the injected windows against every benign window."""
    positive: list[Sequence[str]] = []
    negative: list[Sequence[str]] = []
    for item, text, chosen in zip(items, embedded, positives, strict=True):
        if not text.windows:
            continue
        if item.injection:
            window = text.windows[chosen]
            positive.append(text.words.lowered[window.start : window.end])
        else:
            negative.extend(text.words.lowered[w.start : w.end] for w in text.windows)
    return fit_lexicon(positive, negative)


def fit_logistic(
    features: FloatMatrix,
    labels: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    penalty: float,
    iterations: int = 50,
) -> tuple[npt.NDArray[np.float64], float]:
    """Weighted L2-penalised logistic regression by Newton's method; the intercept is free."""
    x = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])
    w = weights / weights.sum()
    ridge = np.full(x.shape[1], penalty)
    ridge[-1] = 0.0
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (w * (p - labels)) + ridge * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(ridge) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-7:
            break
    return beta[:-1], float(beta[-1])


def _fit_windows(
    items: Sequence[LabelledText],
    embedded: Sequence[EmbeddedText],
    positives: Sequence[int],
    options: Options,
) -> tuple[npt.NDArray[np.float64], float]:
    rows: list[FloatMatrix] = []
    labels: list[float] = []
    weights: list[float] = []
    share = _item_shares(items, options.benign_weighting)
    for item, text, positive, item_share in zip(items, embedded, positives, share, strict=True):
        if not text.windows:
            continue
        if item.injection:
            rows.append(text.vectors[positive : positive + 1])
            labels.append(1.0)
            weights.append(item_share)
        else:
            count = len(text.windows)
            rows.append(text.vectors)
            labels.extend([0.0] * count)
            weights.extend([item_share / count] * count)
    return fit_logistic(
        np.concatenate(rows),
        np.asarray(labels),
        np.asarray(weights, dtype=np.float64),
        options.penalty,
    )


def _item_shares(items: Sequence[LabelledText], benign_weighting: str) -> list[float]:
    """Each item's weight: half per label; injections equal per source, then per item."""
    sizes: dict[tuple[str, bool], int] = defaultdict(int)
    for item in items:
        sizes[(item.source, item.injection)] += 1
    sources_per_label = {
        label: sum(1 for _, injection in sizes if injection == label) for label in (True, False)
    }
    benign_total = sum(size for (_, injection), size in sizes.items() if not injection)
    shares = []
    for item in items:
        if not item.injection and benign_weighting == "text":
            shares.append(0.5 / benign_total)
        else:
            shares.append(
                0.5 / sources_per_label[item.injection] / sizes[(item.source, item.injection)]
            )
    return shares


def _lexicon_pick(text: EmbeddedText, lexicon: dict[str, float]) -> int:
    """The window the lexicon rates most injection-like (the last one on a tie)."""
    if len(text.windows) <= 1:
        return 0
    rated = text_windows.ratings(text.windows, text.words, lexicon)
    best = max(rated)
    return max(i for i, value in enumerate(rated) if value == best)
