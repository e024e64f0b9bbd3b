"""Reading request bodies and checking the fields both wire formats share."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from seawall.errors import InvalidRequest
from seawall.tokens import message_text


async def read_json_object(request: web.BaseRequest) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequest."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def required_string(body: dict[str, Any], key: str) -> str:
    """A non-empty string field."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{key}' is required and must be a non-empty string.", param=key)
    return value


def optional_int(body: dict[str, Any], key: str, *, low: int, high: int) -> int | None:
    """An integer field within [low, high], or None when absent."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"'{key}' must be an integer from {low} to {high}.", param=key)
    return value


def optional_bool(body: dict[str, Any], key: str) -> bool:
    """A boolean field, False when absent."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be a boolean.", param=key)
    return value


def stop_strings(body: dict[str, Any], key: str, *, limit: int) -> tuple[str, ...]:
    """Stop strings given as one string or a list of strings."""
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and len(value) <= limit and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise InvalidRequest(f"'{key}' must be a string or up to {limit} strings.", param=key)


def message_list(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-empty list of message objects."""
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(message, dict) for message in messages)
    ):
        raise InvalidRequest("'messages' must be a non-empty array of objects.", param="messages")
    return messages


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (of the last message when no user spoke)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return message_text(messages[-1])


def system_text(messages: list[dict[str, Any]]) -> str:
    """The text of every system (and developer) message, one per line."""
    return "\n".join(
        message_text(message)
        for message in messages
        if message.get("role") in ("system", "developer")
    )


def function_tools(tools: Any, *, param: str = "tools") -> list[dict[str, Any]]:
    """A list of tool objects, or InvalidRequest."""
    if tools is None:
        return []
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise InvalidRequest(f"'{param}' must be an array of objects.", param=param)
    return tools
