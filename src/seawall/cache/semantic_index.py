"""The semantic cache's vectors, in process: nearest stored message by cosine similarity.

Vectors are grouped by context (everything about a request but its last user
message: model, system prompt, earlier turns, parameters, scope), so a search only
compares messages that would have been asked under the same conditions. Each group
is a float32 matrix searched with one matrix-vector product. The index holds at
most ``max_entries`` vectors; past that the oldest go first. An entry found here is
only a candidate: its answer is fetched from the cache store by its exact key (and
may have expired there), and the near-miss check still has to pass.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seawall.cache.embedder import Vector

DIMENSIONS = 384


class _Group:
    """One context's vectors: rows ``[0, len(keys))`` of a matrix that grows by doubling."""

    __slots__ = ("keys", "rows", "texts", "vectors")

    def __init__(self) -> None:
        self.vectors: npt.NDArray[np.float32] = np.empty((4, DIMENSIONS), dtype=np.float32)
        self.keys: list[str] = []
        self.texts: list[str] = []
        self.rows: dict[str, int] = {}

    def add(self, key: str, text: str, vector: Vector) -> None:
        row = len(self.keys)
        if row == len(self.vectors):
            grown = np.empty((2 * row, DIMENSIONS), dtype=np.float32)
            grown[:row] = self.vectors
            self.vectors = grown
        self.vectors[row] = vector
        self.keys.append(key)
        self.texts.append(text)
        self.rows[key] = row

    def remove(self, key: str) -> None:
        """Drop ``key``'s row: the last row takes its place."""
        row = self.rows.pop(key)
        last = len(self.keys) - 1
        if row != last:
            moved = self.keys[last]
            self.vectors[row] = self.vectors[last]
            self.keys[row], self.texts[row] = moved, self.texts[last]
            self.rows[moved] = row
        self.keys.pop()
        self.texts.pop()


@dataclass(frozen=True, slots=True)
class Candidate:
    """The nearest stored message: its entry's exact key, its text and the similarity."""

    key: str
    text: str
    similarity: float


class SemanticIndex:
    """Vectors by context, bounded by ``max_entries`` (oldest dropped first)."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._groups: dict[str, _Group] = {}
        # (context, key) in insertion order, for dropping the oldest.
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def add(self, context: str, key: str, text: str, vector: Vector) -> None:
        """Index ``vector`` (of message ``text``, answered under ``key``) in ``context``."""
        self.remove(context, key)
        self._groups.setdefault(context, _Group()).add(key, text, vector)
        self._order[(context, key)] = None
        while len(self._order) > self._max_entries:
            old_context, old_key = next(iter(self._order))
            self.remove(old_context, old_key)

    def remove(self, context: str, key: str) -> None:
        """Forget one entry (expired or evicted from the store); nothing if unknown."""
        if (context, key) not in self._order:
            return
        del self._order[(context, key)]
        group = self._groups[context]
        group.remove(key)
        if not group.keys:
            del self._groups[context]

    def nearest(self, context: str, vector: Vector) -> Candidate | None:
        """The most similar message stored in ``context``, or None when there is none."""
        group = self._groups.get(context)
        if group is None:
            return None
        scores = group.vectors[: len(group.keys)] @ vector
        row = int(np.argmax(scores))
        return Candidate(group.keys[row], group.texts[row], float(scores[row]))
