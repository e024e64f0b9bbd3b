"""Validators for the schemas of OpenAI's published API specification.

The spec is copied into tests/data/openai with its LICENSE and SOURCE, so the tests
pass from any clone.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parent / "data" / "openai" / "openapi.yaml"
_SPEC_URI = "urn:openai-openapi"


class OpenAISpec:
    """The specification, loaded once, handing out a validator per component schema."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        with path.open(encoding="utf-8") as handle:
            document = _json_schema_nulls(yaml.load(handle, Loader=yaml.CSafeLoader))
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)

    @cache  # noqa: B019 - one spec object lives for the whole session
    def validator(self, component: str) -> jsonschema.Draft202012Validator:
        """A validator for ``#/components/schemas/<component>``."""
        schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{component}"}
        return jsonschema.Draft202012Validator(schema, registry=self._registry)

    def validate(self, component: str, instance: Any) -> None:
        """Raise ``jsonschema.ValidationError`` unless ``instance`` fits the component."""
        self.validator(component).validate(instance)


@cache
def openai_spec() -> OpenAISpec:
    """The spec, parsed once per test session."""
    return OpenAISpec()


def assert_valid(component: str, instance: Any) -> None:
    """Fail with every violation listed when ``instance`` does not match the schema."""
    errors = sorted(
        openai_spec().validator(component).iter_errors(instance), key=lambda e: list(e.path)
    )
    assert not errors, f"{component} violations:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors[:10]
    )


def _json_schema_nulls(node: Any) -> Any:
    # The spec is OpenAPI 3.1 but still says `nullable: true` in places; JSON Schema
    # ignores that keyword, so spell it as "or null".
    if isinstance(node, list):
        return [_json_schema_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema_nulls(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted
