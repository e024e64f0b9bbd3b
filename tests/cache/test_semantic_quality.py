"""The semantic cache on a labelled set: no near-miss ever answered, most paraphrases are.

``tests/data/cache/semantic_pairs.jsonl`` holds paraphrase pairs and hard negatives
(a changed number, a negation, a changed name), written before the threshold was
chosen (see its SOURCE). For each pair the first message is stored and the second
asked, with the shipped default threshold and the near-miss check, as the cache does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seawall.cache.embedder import LocalEmbedder
from seawall.cache.near_miss import same_meaning_parts
from seawall.config.cache import SemanticSettings

PAIRS = Path(__file__).parents[1] / "data" / "cache" / "semantic_pairs.jsonl"


@pytest.fixture(scope="module")
def judged() -> list[tuple[dict[str, Any], bool]]:
    """Each pair with whether the cache would answer its second message with the first's."""
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    embedder = LocalEmbedder()
    stored = embedder.embed_many([pair["a"] for pair in pairs])
    asked = embedder.embed_many([pair["b"] for pair in pairs])
    similarity = np.sum(stored * asked, axis=1)
    threshold = SemanticSettings().threshold
    return [
        (pair, bool(score >= threshold) and same_meaning_parts(pair["b"], pair["a"]))
        for pair, score in zip(pairs, similarity, strict=True)
    ]


def test_the_set_is_as_large_as_promised(judged: list[tuple[dict[str, Any], bool]]) -> None:
    kinds = Counter(pair["kind"] for pair, _ in judged)
    assert kinds["paraphrase"] >= 200
    assert kinds["number"] + kinds["negation"] + kinds["entity"] >= 200
    assert min(kinds["number"], kinds["negation"], kinds["entity"]) >= 50


def test_no_hard_negative_is_ever_answered(judged: list[tuple[dict[str, Any], bool]]) -> None:
    false_hits = [
        (pair["a"], pair["b"]) for pair, hit in judged if pair["label"] == "hard_negative" and hit
    ]
    assert false_hits == []


def test_most_paraphrases_are_answered(judged: list[tuple[dict[str, Any], bool]]) -> None:
    paraphrases = [hit for pair, hit in judged if pair["label"] == "paraphrase"]
    assert sum(paraphrases) / len(paraphrases) >= 0.60
