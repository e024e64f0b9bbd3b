"""Which request fields can change an answer, and the exact cache key built from them.

Every field of the chat request is in one of two lists. ``OUTPUT_FIELDS`` can change
what the model answers, so two requests that differ in any of them never share an
entry. ``NEUTRAL_FIELDS`` cannot (who asks, how the answer is delivered, what the
provider stores or bills): they are left out of the key, so requests differing only
there share an entry. A field in neither list (a provider-specific parameter, a
field newer than this list) is kept in the key: an unknown field costs a miss, never
a wrong answer. A test fails when OpenAI's request schema gains a field that is in
neither list, so each new field is decided on once.

The key is a SHA-256 of the canonical JSON (sorted keys, no whitespace) of every
field but the neutral ones, with ``model`` replaced by the public model that
answers (a router's choice, so ``auto`` and the model it picked share entries).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

OUTPUT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "frequency_penalty",
        "presence_penalty",
        "reasoning_effort",
        "verbosity",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "moderation",
    }
)

NEUTRAL_FIELDS = frozenset(
    {
        # Who asks: recorded and budgeted, not seen by the model.
        "user",
        "safety_identifier",
        "metadata",
        # How the answer is delivered: a cached answer is replayed as a stream on request.
        "stream",
        "stream_options",
        # What the provider keeps, how fast it serves, and its own prompt cache.
        "store",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
    }
)


def keyed_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The request's fields that are part of its key: all but the neutral ones."""
    return {name: value for name, value in body.items() if name not in NEUTRAL_FIELDS}


def exact_key(scope: str, model: str, body: dict[str, Any]) -> str:
    """The exact cache key of a chat request answered by public model ``model``."""
    kept = keyed_fields(body)
    kept["model"] = model
    digest = hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{scope}:{digest}"
