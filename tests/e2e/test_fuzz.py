"""Generated requests, 1,000 per endpoint: whatever arrives, Seawall never answers 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import LiveSeawall

EXAMPLES = 1000

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

models = st.sampled_from(["gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-0", "x"])
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "bad"])},
        optional={"content": json_values, "tool_call_id": json_values, "tool_calls": json_values},
    ),
    max_size=3,
)


def _body(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed bodies with each known field sometimes wrong."""
    return st.fixed_dictionaries(
        {},
        optional={name: st.one_of(strategy, json_values) for name, strategy in fields.items()},
    )


chat_bodies = _body(
    {
        "model": models,
        "messages": messages,
        "max_tokens": st.integers(min_value=-5, max_value=50),
        "temperature": st.floats(min_value=-1, max_value=3),
        "n": st.integers(min_value=-1, max_value=3),
        "stop": st.lists(st.text(max_size=3), max_size=5),
        "tools": json_values,
        "tool_choice": st.sampled_from(["auto", "none", "required", "other"]),
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "json_schema"}]),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(min_value=-1, max_value=30),
        "stream_options": st.just({"include_usage": True}),
    }
)
embedding_bodies = _body(
    {
        "model": models,
        "input": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3)),
        "encoding_format": st.sampled_from(["float", "base64", "hex"]),
        "dimensions": st.integers(min_value=-1, max_value=500),
    }
)
message_bodies = _body(
    {
        "model": models,
        "max_tokens": st.integers(min_value=-1, max_value=50),
        "messages": messages,
        "system": json_values,
        "stop_sequences": st.lists(st.text(max_size=3), max_size=3),
        "tools": json_values,
        "tool_choice": json_values,
        "temperature": st.floats(min_value=-1, max_value=2),
    }
)
raw_bytes = st.binary(max_size=64)


@pytest.fixture(scope="module")
def http(live_seawall: LiveSeawall) -> httpx.Client:
    return httpx.Client(
        base_url=live_seawall.url,
        headers={"authorization": f"Bearer {live_seawall.key}", "x-api-key": live_seawall.key},
        timeout=20,
    )


def _never_5xx(http: httpx.Client, path: str, content: bytes) -> None:
    response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code < 500, (path, content[:300], response.text[:300])


def _encode(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else orjson.dumps(body)


fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@fuzz
@given(body=st.one_of(chat_bodies, raw_bytes))
def test_chat_completions_never_5xx(http: httpx.Client, body: dict[str, Any] | bytes) -> None:
    _never_5xx(http, "/v1/chat/completions", _encode(body))


@fuzz
@given(body=st.one_of(embedding_bodies, raw_bytes))
def test_embeddings_never_5xx(http: httpx.Client, body: dict[str, Any] | bytes) -> None:
    _never_5xx(http, "/v1/embeddings", _encode(body))


@fuzz
@given(body=st.one_of(message_bodies, raw_bytes))
def test_messages_never_5xx(http: httpx.Client, body: dict[str, Any] | bytes) -> None:
    _never_5xx(http, "/v1/messages", _encode(body))
