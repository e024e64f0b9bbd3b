"""Validators for the schemas of OpenAI's published API specification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parents[1] / "data" / "openai" / "openapi.yaml"
_SPEC_URI = "urn:openai-openapi"


class OpenAISpec:
    """The specification, loaded once, handing out a validator per component schema."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        with path.open(encoding="utf-8") as handle:
            document = _json_schema_nulls(yaml.load(handle, Loader=yaml.CSafeLoader))
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)

    def validator(self, component: str) -> jsonschema.Draft202012Validator:
        """A validator for ``#/components/schemas/<component>``."""
        schema = {"$ref": f"{_SPEC_URI}#/components/schemas/{component}"}
        return jsonschema.Draft202012Validator(schema, registry=self._registry)

    def validate(self, component: str, instance: Any) -> None:
        """Raise ``jsonschema.ValidationError`` unless ``instance`` fits the component."""
        self.validator(component).validate(instance)


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
