"""Validators for schemas of the official OpenAI spec copied into tests/data/openai."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).parent / "data" / "openai" / "openapi.yaml"


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI's ``nullable: true`` means JSON Schema's "or null"."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _registry() -> Registry:
    document = _nullable_to_json_schema(yaml.safe_load(SPEC.read_text(encoding="utf-8")))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource("openapi.yaml", resource)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``."""
    return Draft202012Validator(
        {"$ref": f"openapi.yaml#/components/schemas/{schema_name}"}, registry=_registry()
    )


def assert_valid(schema_name: str, instance: Any) -> None:
    """Fail with every violation listed when ``instance`` does not match the schema."""
    errors = sorted(validator(schema_name).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{schema_name} violations:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:10]
    )
