"""Parsing a request body into a JSON object, once, with errors a user can act on."""

from __future__ import annotations

from typing import Any

import orjson

from seawall.errors import InvalidRequest


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse the body as a JSON object or raise ``InvalidRequest`` saying why not."""
    if not raw:
        raise InvalidRequest(
            "The request body is empty; send a JSON object (Content-Type: application/json)."
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if _not_utf8(raw) else str(exc)
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {detail}. "
            "Send a JSON object (Content-Type: application/json)."
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not {type_name(value)}.")
    return value


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def type_name(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
