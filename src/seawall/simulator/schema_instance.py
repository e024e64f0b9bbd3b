"""The smallest plausible JSON value that a JSON Schema accepts.

Used for simulated tool-call arguments and structured outputs. It covers what
tool and response schemas use in practice (types, required properties, enums,
consts, bounds, lengths, item counts, local ``$ref``, ``allOf``/``anyOf``/
``oneOf``, common string formats); ``pattern`` and ``not`` are not solved.
"""

from __future__ import annotations

import math
from typing import Any

# Deeper than any sane schema; stops runaway recursive $refs.
_MAX_DEPTH = 24
_WORD = "simulated"
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def minimal_instance(schema: Any) -> Any:
    """A value valid against ``schema``: required properties only, smallest sizes."""
    return _instance(schema, schema, 0)


def _instance(schema: Any, root: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    if "$ref" in schema:
        return _instance(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "allOf" in schema:
        return _instance(_merge(schema, root), root, depth + 1)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _instance(_preferred(options, root), root, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, depth)
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema)


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        # A nullable field still gets a real value: it is more useful to callers.
        real = [name for name in kind if name != "null"]
        return str(real[0]) if real else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _resolve(ref: Any, root: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return {}
    node = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _preferred(options: list[Any], root: Any) -> Any:
    for option in options:
        target = (
            _resolve(option["$ref"], root)
            if isinstance(option, dict) and "$ref" in option
            else option
        )
        if not (isinstance(target, dict) and target.get("type") == "null"):
            return option
    return options[0]


def _merge(schema: dict[str, Any], root: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties", {}))
    required: list[str] = list(merged.get("required", []))
    for part in schema["allOf"]:
        if isinstance(part, dict) and "$ref" in part:
            part = _resolve(part["$ref"], root)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(name for name in value if name not in required)
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _object(schema: dict[str, Any], root: Any, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    names = [name for name in schema.get("required", []) if isinstance(name, str)]
    for name in properties:
        if len(names) >= schema.get("minProperties", 0):
            break
        if name not in names:
            names.append(name)
    return {name: _instance(properties.get(name, {}), root, depth + 1) for name in names}


def _array(schema: dict[str, Any], root: Any, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    prefix = prefix if isinstance(prefix, list) else []
    min_items = schema.get("minItems", 0)
    count = min_items if isinstance(min_items, int) else 0
    items = schema.get("items", {})
    values = [
        _instance(prefix[i] if i < len(prefix) else items, root, depth + 1) for i in range(count)
    ]
    if schema.get("uniqueItems"):
        values = [_distinct(value, i) for i, value in enumerate(values)]
    return values


def _distinct(value: Any, index: int) -> Any:
    # Minimal items are all alike; uniqueItems needs them told apart.
    if index == 0:
        return value
    if isinstance(value, str):
        return f"{value}{index}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value + index
    return value


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    step = schema.get("multipleOf")
    step = step if isinstance(step, int | float) and step > 0 else (1 if integer else None)
    low = _bound(schema, "minimum", "exclusiveMinimum", step, upward=True)
    high = _bound(schema, "maximum", "exclusiveMaximum", step, upward=False)
    value: float = 0
    if low is not None and value < low:
        value = low
    elif high is not None and value > high:
        value = high
    if step is not None:
        value = math.ceil(value / step) * step
        if high is not None and value > high:
            value -= step
    return int(value) if integer else value


def _bound(
    schema: dict[str, Any], inclusive: str, exclusive: str, step: float | None, *, upward: bool
) -> float | None:
    nudge = step if step is not None else 1e-6
    candidates: list[float] = []
    if isinstance(schema.get(inclusive), int | float):
        candidates.append(schema[inclusive])
    value = schema.get(exclusive)
    if isinstance(value, bool) and value and isinstance(schema.get(inclusive), int | float):
        # Draft 4 spelling: exclusiveMinimum is a flag on minimum.
        candidates.append(schema[inclusive] + (nudge if upward else -nudge))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        candidates.append(value + (nudge if upward else -nudge))
    if not candidates:
        return None
    return max(candidates) if upward else min(candidates)


def _string(schema: dict[str, Any]) -> str:
    text = _FORMATS.get(str(schema.get("format", "")), _WORD)
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(text) < min_length:
        text = (text * (min_length // len(text) + 1))[:min_length]
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(text) > max_length:
        text = text[:max_length]
    return text
