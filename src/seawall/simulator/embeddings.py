"""Deterministic embedding vectors: the same text always maps to the same unit vector."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt

from seawall.errors import InvalidRequest
from seawall.tokens import TokenCounter

_MAX_INPUTS = 2048

Vector = npt.NDArray[np.float32]


def embedding_inputs(value: Any, counter: TokenCounter) -> list[tuple[str, int]]:
    """Each input as a hashing key and its token count.

    OpenAI accepts a string, a list of strings, a list of token ids or a list of
    token-id lists; token ids are hashed by value, since the simulator has no
    vocabulary to decode them with.
    """
    if isinstance(value, str):
        return [(value, counter.count_text(value))]
    if isinstance(value, list) and 0 < len(value) <= _MAX_INPUTS:
        if all(isinstance(item, str) for item in value):
            return [(item, counter.count_text(item)) for item in value]
        if _token_ids(value):
            return [(_ids_key(value), len(value))]
        if all(isinstance(item, list) and item and _token_ids(item) for item in value):
            return [(_ids_key(item), len(item)) for item in value]
    raise InvalidRequest(
        "'input' must be a string, an array of strings or an array of token arrays.",
        param="input",
    )


def unit_vector(key: str, dimensions: int) -> Vector:
    """A unit-length vector seeded by a hash of ``key``."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dimensions, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / np.float32(norm) if norm else vector


def encode_vector(vector: Vector, encoding: str) -> Vector | str:
    """The vector as OpenAI sends it: floats, or base64 of little-endian float32."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector


def _token_ids(items: list[Any]) -> bool:
    return all(isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in items)


def _ids_key(ids: list[int]) -> str:
    return "\x00tokens:" + ",".join(map(str, ids))
