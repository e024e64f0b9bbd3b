"""Validation of OpenAI-shaped chat and embedding requests.

Only fields Seawall understands are checked; unknown fields pass through to the
upstream untouched, because providers add parameters faster than gateways do.
Messages follow OpenAI's wording so SDK users recognise them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seawall.errors import InvalidRequest
from seawall.inbound.checks import (
    expect_boolean,
    expect_integer,
    expect_number,
    expect_object,
    expect_string,
    invalid_type,
    invalid_value,
    missing,
)
from seawall.inbound.json_body import parse_object

Check = Callable[[str, Any], None]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_FORMATS = frozenset({"text", "json_object", "json_schema"})


def _number(low: float, high: float) -> Check:
    def check(param: str, value: Any) -> None:
        expect_number(param, value, low, high)

    return check


def _integer(low: int, high: int | None = None) -> Check:
    def check(param: str, value: Any) -> None:
        expect_integer(param, value, low, high)

    return check


def _boolean(param: str, value: Any) -> None:
    expect_boolean(param, value)


def _string(param: str, value: Any) -> None:
    expect_string(param, value)


def _object(param: str, value: Any) -> None:
    expect_object(param, value)


def _stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_type(param, "a string or an array of strings", value)
    if len(value) > 4:
        raise invalid_value(param, f"{len(value)} sequences; at most 4 are allowed.")


def _stream_options(param: str, value: Any) -> None:
    _object(param, value)
    if "include_usage" in value:
        _boolean(f"{param}.include_usage", value["include_usage"])


def _tools(param: str, value: Any) -> None:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    for index, tool in enumerate(value):
        where = f"{param}[{index}]"
        _object(where, tool)
        if tool.get("type", "function") != "function":
            continue  # custom tool kinds pass through to providers that know them
        function = tool.get("function")
        _object(f"{where}.function", function)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise missing(f"{where}.function.name")
        if "parameters" in function:
            _object(f"{where}.function.parameters", function["parameters"])


def _tool_choice(param: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in _TOOL_CHOICES:
            raise InvalidRequest(
                f"Invalid value for '{param}': {value!r}; use 'none', 'auto', 'required' "
                "or an object naming a function.",
                param=param,
                code="invalid_value",
            )
        return
    _object(param, value)


def _response_format(param: str, value: Any) -> None:
    _object(param, value)
    kind = value.get("type")
    if kind not in _FORMATS:
        raise InvalidRequest(
            f"Invalid value for '{param}.type': {kind!r}; use 'text', 'json_object' or "
            "'json_schema'.",
            param=f"{param}.type",
            code="invalid_value",
        )
    if kind == "json_schema":
        schema = value.get("json_schema")
        _object(f"{param}.json_schema", schema)
        if not isinstance(schema.get("name"), str):
            raise missing(f"{param}.json_schema.name")


_CHAT_FIELDS: dict[str, Check] = {
    "stream": _boolean,
    "stream_options": _stream_options,
    "n": _integer(1, 128),
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "seed": _integer(-(2**63), 2**63 - 1),
    "stop": _stop,
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 20),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "response_format": _response_format,
    "user": _string,
    "logit_bias": _object,
    "metadata": _object,
}


def _model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a non-empty string", model)


def _messages(value: Any) -> None:
    if value is None:
        raise missing("messages")
    if not isinstance(value, list):
        raise invalid_type("messages", "an array", value)
    if not value:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        _object(where, message)
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"Invalid value for '{where}.role': {role!r}; expected one of "
                "'system', 'developer', 'user', 'assistant', 'tool'.",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is None:
            if role != "assistant":
                raise missing(f"{where}.content")
        elif not isinstance(content, str | list):
            raise invalid_type(f"{where}.content", "a string or an array of parts", content)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise missing(f"{where}.tool_call_id")


def validate_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Check a chat completion request; returns the same dict."""
    _model(body)
    _messages(body.get("messages"))
    for name, check in _CHAT_FIELDS.items():
        value = body.get(name)
        if value is not None:
            check(name, value)
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        raise InvalidRequest(
            "Using 'top_logprobs' requires 'logprobs' to be true.",
            param="top_logprobs",
            code="invalid_value",
        )
    return body


def _embedding_input(value: Any) -> None:
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' cannot be an empty string.", param="input")
        return
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            "'input' must be a non-empty string, an array of strings, or an array of token arrays.",
            param="input",
            code="invalid_type" if not isinstance(value, list) else "empty_array",
        )
    if all(isinstance(item, str) and item for item in value):
        return
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return
    if all(
        isinstance(item, list)
        and item
        and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
        for item in value
    ):
        return
    raise InvalidRequest(
        "'input' must be a non-empty string, an array of non-empty strings, an array of "
        "integers, or an array of integer arrays.",
        param="input",
        code="invalid_value",
    )


def _encoding_format(param: str, value: Any) -> None:
    if value not in ("float", "base64"):
        raise InvalidRequest(
            f"Invalid value for '{param}': {value!r}; use 'float' or 'base64'.",
            param=param,
            code="invalid_value",
        )


_EMBEDDING_FIELDS: dict[str, Check] = {
    "encoding_format": _encoding_format,
    "dimensions": _integer(1),
    "user": _string,
}


def validate_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Check an embeddings request; returns the same dict."""
    _model(body)
    _embedding_input(body.get("input"))
    for name, check in _EMBEDDING_FIELDS.items():
        value = body.get(name)
        if value is not None:
            check(name, value)
    return body


def decode_chat(raw: bytes) -> dict[str, Any]:
    """Parse and check a chat completion request body."""
    return validate_chat(parse_object(raw))


def decode_embeddings(raw: bytes) -> dict[str, Any]:
    """Parse and check an embeddings request body."""
    return validate_embeddings(parse_object(raw))
