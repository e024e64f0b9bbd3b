"""The exact cache key: every output-affecting field separates entries, nothing else does."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from seawall.cache.fields import NEUTRAL_FIELDS, OUTPUT_FIELDS, exact_key
from tests.openai_spec import SPEC_PATH

BASE: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "What is 2 + 2?"}],
    "temperature": 0,
}

json_values = st.recursive(
    # Bodies are parsed by orjson, which reads integers beyond 64 bits as floats.
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def canonical(request: dict[str, Any]) -> str:
    """The request as JSON with sorted keys (the standard library's, not Seawall's)."""
    return json.dumps(request, sort_keys=True)


def chat_request_fields() -> set[str]:
    """Every property of OpenAI's CreateChatCompletionRequest, through its allOf parts."""
    with SPEC_PATH.open(encoding="utf-8") as handle:
        schemas = yaml.load(handle, Loader=yaml.CSafeLoader)["components"]["schemas"]

    def properties(name: str) -> set[str]:
        schema = schemas[name]
        found: set[str] = set()
        for part in schema.get("allOf", [schema]):
            if "$ref" in part:
                found |= properties(part["$ref"].rsplit("/", 1)[-1])
            found |= set(part.get("properties", {}))
        return found

    return properties("CreateChatCompletionRequest")


def test_every_field_of_the_request_schema_is_decided_on() -> None:
    fields = chat_request_fields()
    undecided = fields - OUTPUT_FIELDS - NEUTRAL_FIELDS
    assert not undecided, f"decide whether these change the answer: {sorted(undecided)}"
    assert not OUTPUT_FIELDS & NEUTRAL_FIELDS
    # The lists name real fields (the spec is the reference for both).
    assert {"messages", "temperature", "seed", "tools"} <= OUTPUT_FIELDS <= fields
    assert {"user", "stream", "metadata"} <= NEUTRAL_FIELDS <= fields


@given(field=st.sampled_from(sorted(OUTPUT_FIELDS - {"model"})), a=json_values, b=json_values)
def test_requests_differing_in_an_output_field_never_share_a_key(
    field: str, a: Any, b: Any
) -> None:
    first, second = {**BASE, field: a}, {**BASE, field: b}
    same_key = exact_key("tenant=t", "m", first) == exact_key("tenant=t", "m", second)
    assert same_key == (canonical(first) == canonical(second))


@given(field=st.text(min_size=1, max_size=12), a=json_values, b=json_values)
def test_unknown_fields_such_as_provider_parameters_are_part_of_the_key(
    field: str, a: Any, b: Any
) -> None:
    if field in NEUTRAL_FIELDS or field == "model":
        return
    first, second = {**BASE, field: a}, {**BASE, field: b}
    same_key = exact_key("tenant=t", "m", first) == exact_key("tenant=t", "m", second)
    assert same_key == (canonical(first) == canonical(second))


@given(field=st.sampled_from(sorted(NEUTRAL_FIELDS)), a=json_values, b=json_values)
def test_requests_differing_only_in_neutral_fields_share_a_key(field: str, a: Any, b: Any) -> None:
    assert exact_key("tenant=t", "m", {**BASE, field: a}) == exact_key(
        "tenant=t", "m", {**BASE, field: b}
    )


def test_scope_and_model_separate_entries() -> None:
    key = exact_key("tenant=a", "gpt-4o-mini", BASE)
    assert key != exact_key("tenant=b", "gpt-4o-mini", BASE)
    assert key != exact_key("tenant=a", "gpt-4.1-mini", BASE)
    # The answering public model counts, not the name the client sent (a router's).
    assert key == exact_key("tenant=a", "gpt-4o-mini", {**BASE, "model": "auto"})


def test_key_order_inside_the_request_does_not_matter() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"a": 1, "b": 2}}}]
    reordered = [{"function": {"parameters": {"b": 2, "a": 1}, "name": "f"}, "type": "function"}]
    assert exact_key("s", "m", {**BASE, "tools": tools}) == exact_key(
        "s", "m", {"tools": reordered, **BASE}
    )
