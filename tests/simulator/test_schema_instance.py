"""Simulated tool arguments and structured outputs satisfy the schemas callers give."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from seawall.simulator.schema_instance import minimal_instance

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {}, "additionalProperties": False},
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 12, "maxLength": 20},
            "code": {"type": "string", "maxLength": 3},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email"},
        },
        "required": ["name", "code", "when", "email"],
    },
    {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 5},
            "ratio": {"type": "number", "minimum": 0.5, "maximum": 0.75},
            "below": {"type": "integer", "maximum": -3},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
        },
        "required": ["count", "ratio", "below", "flag", "nothing"],
    },
    {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 3,
                "uniqueItems": True,
            },
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
            },
        },
        "required": ["tags", "pair"],
    },
    {
        "type": "object",
        "properties": {
            "choice": {"enum": ["red", "green"]},
            "fixed": {"const": 42},
            "maybe": {"type": ["null", "string"], "minLength": 2},
            "either": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 9}]},
            "one": {"oneOf": [{"type": "string", "maxLength": 0}, {"type": "integer"}]},
        },
        "required": ["choice", "fixed", "maybe", "either", "one"],
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 1}}, "required": ["b"]},
        ]
    },
    {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
        "required": ["root"],
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["label", "children"],
            }
        },
    },
    {
        "type": "object",
        "properties": {"x": {"type": "string"}, "y": {"type": "string"}},
        "minProperties": 1,
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_minimal_instance_is_valid(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        minimal_instance(schema)
    )


def test_draft4_exclusive_bounds_are_respected() -> None:
    schema = {"type": "integer", "minimum": 10, "exclusiveMinimum": True}
    jsonschema.Draft4Validator(schema).validate(minimal_instance(schema))


def test_only_required_properties_are_filled() -> None:
    schema = {
        "type": "object",
        "properties": {"needed": {"type": "string"}, "optional": {"type": "string"}},
        "required": ["needed"],
    }
    assert minimal_instance(schema) == {"needed": "simulated"}
