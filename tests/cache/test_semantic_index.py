"""The in-process vector index, the near-miss check and a failing embedder, on their own."""

from __future__ import annotations

import numpy as np
import pytest

from seawall.cache.embedder import LocalEmbedder
from seawall.cache.near_miss import same_meaning_parts
from seawall.cache.semantic import Question, SemanticCache
from seawall.cache.semantic_index import DIMENSIONS, SemanticIndex
from seawall.config.cache import SemanticSettings
from seawall.errors import UpstreamUnavailable


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_nearest_is_searched_within_the_context_only() -> None:
    index = SemanticIndex(max_entries=100)
    index.add("ctx-a", "k1", "first", unit(1))
    index.add("ctx-a", "k2", "second", unit(2))
    index.add("ctx-b", "k3", "third", unit(3))
    found = index.nearest("ctx-a", unit(2))
    assert found is not None and (found.key, found.text) == ("k2", "second")
    assert found.similarity == pytest.approx(1.0, abs=1e-5)
    assert index.nearest("ctx-a", unit(3)).key != "k3"  # type: ignore[union-attr]
    assert index.nearest("ctx-c", unit(1)) is None


def test_growth_removal_and_the_entry_bound() -> None:
    index = SemanticIndex(max_entries=50)
    for i in range(60):
        index.add("ctx", f"k{i}", f"text {i}", unit(i))
    assert len(index) == 50
    # The oldest ten went first; every other vector is still found as itself.
    for i in range(60):
        found = index.nearest("ctx", unit(i))
        assert found is not None
        assert (found.key == f"k{i}") == (i >= 10)
    index.remove("ctx", "k30")
    index.remove("ctx", "never-added")
    assert index.nearest("ctx", unit(30)).key != "k30"  # type: ignore[union-attr]
    assert index.nearest("ctx", unit(59)).key == "k59"  # type: ignore[union-attr]
    index.add("ctx", "k59", "again", unit(59))  # re-adding replaces
    assert len(index) == 49


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("Convert 5 miles to km", "How many kilometres is five miles?", True),
        ("Convert 5 miles to km", "Convert 8 miles to km", False),
        ("Price of 1,000 shares", "price of 1000 shares", True),
        ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?", False),
        ("Can I use a debit card?", "Can't I use a debit card?", False),
        ("How to increase the heap size?", "How to decrease the heap size?", False),
        ("What is the capital of Australia?", "What is the capital of Austria?", False),
        ("What is the capital of France?", "Which city is the capital of france?", True),
        ("How do I install PostgreSQL?", "How do I install MySQL?", False),
        ("Explain recursion. Keep it short.", "Keep it short: explain recursion", True),
        ("What happens when you inhale?", "What happens when you exhale?", False),
        ("Tips before I lend money to a friend", "Tips before I borrow money from a friend", False),
        ("How to accelerate smoothly?", "How to decelerate smoothly?", False),
        ("How many kilometres is 5 miles?", "How many kilometers is 5 miles?", True),
        ("What is the melting point of iron?", "What is the melting point of copper?", False),
    ],
)
def test_near_miss_check(first: str, second: str, same: bool) -> None:
    assert same_meaning_parts(first, second) is same
    assert same_meaning_parts(second, first) is same


class BrokenEmbedder(LocalEmbedder):
    """An embedder whose model cannot be loaded (a missing package, a corrupt file)."""

    async def embed(self, text: str) -> np.ndarray:
        raise UpstreamUnavailable("the bundled file model.onnx was not found")


async def test_a_broken_embedder_costs_the_match_not_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    semantic = SemanticCache(SemanticSettings(enabled=True), BrokenEmbedder())
    question = Question("ctx", "What is the capital of France?")
    assert await semantic.find(question) == (None, None)
    assert await semantic.find(question) == (None, None)
    assert caplog.text.count("the embedder failed") == 1
