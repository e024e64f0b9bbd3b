"""Validation of OpenAI-shaped chat and embedding requests.

Only fields Seawall understands are checked; unknown fields pass through to the
upstream untouched, because providers add parameters faster than gateways do.
Messages follow OpenAI's wording so SDK users recognise them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seawall.errors import InvalidRequest
from seawall.inbound.json_body import parse_object, type_name

Check = Callable[[str, Any], None]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_FORMATS = frozenset({"text", "json_object", "json_schema"})


def _invalid_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _out_of_range(param: str, rule: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value for '{param}': {value!r} is out of range; it must be {rule}.",
        param=param,
        code="invalid_value",
    )


def _number(low: float, high: float) -> Check:
    def check(param: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _invalid_type(param, "a number", value)
        if not low <= value <= high:
            raise _out_of_range(param, f"between {low:g} and {high:g}", value)

    return check


def _integer(low: int, high: int | None = None) -> Check:
    def check(param: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(param, "an integer", value)
        if value < low or (high is not None and value > high):
            rule = f"at least {low}" if high is None else f"between {low} and {high}"
            raise _out_of_range(param, rule, value)

    return check


def _boolean(param: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _invalid_type(param, "a boolean", value)


def _string(param: str, value: Any) -> None:
    if not isinstance(value, str):
        raise _invalid_type(param, "a string", value)


def _object(param: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise _invalid_type(param, "an object", value)


def _stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid_type(param, "a string or an array of strings", value)
    if len(value) > 4:
        raise _out_of_range(param, "at most 4 sequences", value)


def _stream_options(param: str, value: Any) -> None:
    _object(param, value)
    if "include_usage" in value:
        _boolean(f"{param}.include_usage", value["include_usage"])


def _tools(param: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _invalid_type(param, "an array", value)
    for index, tool in enumerate(value):
        where = f"{param}[{index}]"
        _object(where, tool)
        if tool.get("type", "function") != "function":
            continue  # custom tool kinds pass through to providers that know them
        function = tool.get("function")
        _object(f"{where}.function", function)
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.function.name'.",
                param=f"{where}.function.name",
                code="missing_required_parameter",
            )
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
            raise InvalidRequest(
                f"Missing required parameter: '{param}.json_schema.name'.",
                param=f"{param}.json_schema.name",
                code="missing_required_parameter",
            )


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
        raise InvalidRequest(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise _invalid_type("model", "a non-empty string", model)


def _messages(value: Any) -> None:
    if value is None:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(value, list):
        raise _invalid_type("messages", "an array", value)
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
                raise InvalidRequest(
                    f"Missing required parameter: '{where}.content'.",
                    param=f"{where}.content",
                    code="missing_required_parameter",
                )
        elif not isinstance(content, str | list):
            raise _invalid_type(f"{where}.content", "a string or an array of parts", content)
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.tool_call_id'.",
                param=f"{where}.tool_call_id",
                code="missing_required_parameter",
            )


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
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
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
