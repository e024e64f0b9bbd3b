"""Field checks shared by every inbound wire format, with OpenAI's wording.

Each ``expect_*`` returns the value when it fits and raises ``InvalidRequest``
naming the parameter when it does not, so SDK users see which field to fix.
"""

from __future__ import annotations

from typing import Any

from seawall.errors import InvalidRequest
from seawall.inbound.json_body import type_name


def invalid_type(param: str, expected: str, value: Any) -> InvalidRequest:
    """A field of the wrong JSON type."""
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def invalid_value(param: str, detail: str) -> InvalidRequest:
    """A field of the right type with a value that is not allowed."""
    return InvalidRequest(
        f"Invalid value for '{param}': {detail}", param=param, code="invalid_value"
    )


def missing(param: str) -> InvalidRequest:
    """A required field that is absent (or null)."""
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def expect_string(param: str, value: Any, *, allow_empty: bool = True) -> str:
    """A string (non-empty unless allowed)."""
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if not value and not allow_empty:
        raise invalid_value(param, "it must not be empty.")
    return value


def expect_object(param: str, value: Any) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def expect_array(param: str, value: Any) -> list[Any]:
    """A JSON array."""
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    return value


def expect_boolean(param: str, value: Any) -> bool:
    """true or false (not 0/1)."""
    if not isinstance(value, bool):
        raise invalid_type(param, "a boolean", value)
    return value


def expect_integer(param: str, value: Any, low: int, high: int | None = None) -> int:
    """An integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    if value < low or (high is not None and value > high):
        rule = f"at least {low}" if high is None else f"between {low} and {high}"
        raise invalid_value(param, f"{value!r} is out of range; it must be {rule}.")
    return value


def expect_number(param: str, value: Any, low: float, high: float) -> float:
    """A number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(param, "a number", value)
    if not low <= value <= high:
        raise invalid_value(
            param, f"{value!r} is out of range; it must be between {low:g} and {high:g}."
        )
    return value
