"""Plausible, deterministic log probabilities in OpenAI's ``logprobs`` shape."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

# Tokens offered as the less likely alternatives at every position.
_ALTERNATIVES = (" a", " the", " this", " it", " and", " of", " to", " in", " is", " that")
# How much less likely each further alternative is, in nats.
_RANK_STEP = 1.25


def token_logprobs(tokens: Iterable[str], top: int) -> list[dict[str, Any]]:
    """One ``ChatCompletionTokenLogprob`` per token, with up to ``top`` candidates each."""
    return [_entry(token, top) for token in tokens]


def _entry(token: str, top: int) -> dict[str, Any]:
    encoded = token.encode()
    # Between -1.5 and 0: a confident but not certain model.
    logprob = -(zlib.crc32(encoded) % 1500) / 1000
    candidates = [token, *(other for other in _ALTERNATIVES if other != token)][:top]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(encoded),
        "top_logprobs": [
            {
                "token": candidate,
                "logprob": round(logprob - _RANK_STEP * rank, 4),
                "bytes": list(candidate.encode()),
            }
            for rank, candidate in enumerate(candidates)
        ],
    }
