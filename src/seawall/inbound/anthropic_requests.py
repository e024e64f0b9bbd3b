"""Decoding Anthropic Messages requests into Seawall's canonical (OpenAI) chat body.

Clients of the ``anthropic`` SDK call ``POST /v1/messages``. The body is checked
field by field, with messages that name the parameter, and translated in the
same pass: system text becomes a system message, ``tool_use`` blocks become
assistant ``tool_calls``, ``tool_result`` blocks become ``tool`` messages and
images become ``image_url`` parts. Top-level fields Seawall does not know are
refused, as Anthropic's API refuses them: silently dropping one would answer a
different question than the client asked.
"""

from __future__ import annotations

from typing import Any

import orjson

from seawall.errors import InvalidRequest
from seawall.inbound.checks import (
    expect_array,
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

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# Fields that tune where or how fast Anthropic serves, never what it answers.
_IGNORED_FIELDS = frozenset(
    {
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "service_tier",
        "speed",
        "user_profile_id",
        "workspace_id",
    }
)
_KNOWN_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "output_config",
    }
)


def _required(container: dict[str, Any], key: str, where: str) -> Any:
    value = container.get(key)
    if value is None:
        raise missing(where)
    return value


def _block_type(where: str, block: dict[str, Any], allowed: tuple[str, ...]) -> str:
    kind = block.get("type")
    if kind not in allowed:
        names = ", ".join(f"'{name}'" for name in allowed)
        raise invalid_value(f"{where}.type", f"{kind!r}; Seawall accepts {names} blocks here.")
    return str(kind)


def _text_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part reads as a plain string, which every OpenAI-compatible server takes."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def _text_block(where: str, block: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "text",
        "text": expect_string(f"{where}.text", _required(block, "text", f"{where}.text")),
    }


def _image_block(where: str, block: dict[str, Any]) -> dict[str, Any]:
    source = expect_object(f"{where}.source", _required(block, "source", f"{where}.source"))
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in _IMAGE_TYPES:
            raise invalid_value(
                f"{where}.source.media_type",
                f"{media_type!r}; use one of {', '.join(_IMAGE_TYPES)}.",
            )
        data = expect_string(
            f"{where}.source.data",
            _required(source, "data", f"{where}.source.data"),
            allow_empty=False,
        )
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = expect_string(
            f"{where}.source.url",
            _required(source, "url", f"{where}.source.url"),
            allow_empty=False,
        )
    else:
        raise invalid_value(f"{where}.source.type", f"{kind!r}; use 'base64' or 'url'.")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_call(where: str, block: dict[str, Any]) -> dict[str, Any]:
    call_id = expect_string(f"{where}.id", _required(block, "id", f"{where}.id"), allow_empty=False)
    name = expect_string(
        f"{where}.name", _required(block, "name", f"{where}.name"), allow_empty=False
    )
    arguments = expect_object(f"{where}.input", _required(block, "input", f"{where}.input"))
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _tool_result(where: str, block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``tool`` message, and any images, which OpenAI tool messages cannot carry."""
    call_id = expect_string(
        f"{where}.tool_use_id",
        _required(block, "tool_use_id", f"{where}.tool_use_id"),
        allow_empty=False,
    )
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for index, part in enumerate(content):
            part_where = f"{where}.content[{index}]"
            expect_object(part_where, part)
            if _block_type(part_where, part, ("text", "image")) == "text":
                texts.append(_text_block(part_where, part)["text"])
            else:
                images.append(_image_block(part_where, part))
    elif content is not None:
        raise invalid_type(f"{where}.content", "a string or an array of blocks", content)
    text = "\n".join(texts)
    is_error = block.get("is_error")
    if is_error is not None and expect_boolean(f"{where}.is_error", is_error):
        # OpenAI has no error flag on tool messages; the model still has to know.
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _user_turn(where: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(where, content)):
        block_where = f"{where}.content[{index}]"
        kind = _block_type(block_where, block, ("text", "image", "tool_result"))
        if kind == "text":
            parts.append(_text_block(block_where, block))
        elif kind == "image":
            parts.append(_image_block(block_where, block))
        else:
            message, images = _tool_result(block_where, block)
            tool_messages.append(message)
            parts.extend(images)
    # OpenAI wants tool messages right after the assistant turn that called the tools.
    if parts:
        tool_messages.append({"role": "user", "content": _text_content(parts)})
    return tool_messages


def _assistant_turn(where: str, content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "assistant", "content": content}]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(_blocks(where, content)):
        block_where = f"{where}.content[{index}]"
        if _block_type(block_where, block, ("text", "tool_use")) == "text":
            parts.append(_text_block(block_where, block))
        else:
            calls.append(_tool_call(block_where, block))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _text_content(parts) if parts else None,
    }
    if calls:
        message["tool_calls"] = calls
    elif not parts:
        message["content"] = ""
    return [message]


def _blocks(where: str, content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise invalid_type(f"{where}.content", "a string or an array of content blocks", content)
    for index, block in enumerate(content):
        expect_object(f"{where}.content[{index}]", block)
    return content


def _conversation(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = expect_array("messages", _required(body, "messages", "messages"))
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Send at least one message.",
            param="messages",
            code="empty_array",
        )
    out = _system(body.get("system"))
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        expect_object(where, message)
        role = message.get("role")
        content = message.get("content")
        if content is None:
            raise missing(f"{where}.content")
        if role == "user":
            out.extend(_user_turn(where, content))
        elif role == "assistant":
            out.extend(_assistant_turn(where, content))
        else:
            raise invalid_value(f"{where}.role", f"{role!r}; use 'user' or 'assistant'.")
    return out


def _system(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}] if value else []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(expect_array("system", value)):
        where = f"system[{index}]"
        expect_object(where, block)
        _block_type(where, block, ("text",))
        parts.append(_text_block(where, block))
    return [{"role": "system", "content": _text_content(parts)}] if parts else []


def _tools(value: Any) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(expect_array("tools", value)):
        where = f"tools[{index}]"
        expect_object(where, tool)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise invalid_value(
                f"{where}.type",
                f"{kind!r}; Seawall serves client tools only (omit 'type' or use 'custom'), "
                "not Anthropic's server tools.",
            )
        name = expect_string(
            f"{where}.name", _required(tool, "name", f"{where}.name"), allow_empty=False
        )
        schema = expect_object(
            f"{where}.input_schema", _required(tool, "input_schema", f"{where}.input_schema")
        )
        function: dict[str, Any] = {"name": name, "parameters": schema}
        description = tool.get("description")
        if description is not None:
            function["description"] = expect_string(f"{where}.description", description)
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any, tools: list[dict[str, Any]], chat: dict[str, Any]) -> None:
    choice = expect_object("tool_choice", value)
    kind = choice.get("type")
    if kind == "tool":
        name = expect_string(
            "tool_choice.name", _required(choice, "name", "tool_choice.name"), allow_empty=False
        )
        if all(tool["function"]["name"] != name for tool in tools):
            raise invalid_value("tool_choice.name", f"{name!r} is not one of the 'tools'.")
        chat["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in _TOOL_CHOICES:
        chat["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise invalid_value("tool_choice.type", f"{kind!r}; use 'auto', 'any', 'tool' or 'none'.")
    disable_parallel = choice.get("disable_parallel_tool_use")
    # OpenAI refuses parallel_tool_calls without tools, so it is only set alongside them.
    if (
        disable_parallel is not None
        and expect_boolean("tool_choice.disable_parallel_tool_use", disable_parallel)
        and tools
    ):
        chat["parallel_tool_calls"] = False


def _output_config(value: Any, chat: dict[str, Any]) -> None:
    config = expect_object("output_config", value)
    if config.get("effort") is not None:
        raise invalid_value(
            "output_config.effort", "Seawall does not support effort levels; remove it."
        )
    output_format = config.get("format")
    if output_format is None:
        return
    expect_object("output_config.format", output_format)
    if output_format.get("type") != "json_schema":
        raise invalid_value("output_config.format.type", "use 'json_schema'.")
    schema = expect_object(
        "output_config.format.schema",
        _required(output_format, "schema", "output_config.format.schema"),
    )
    chat["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def _thinking(value: Any) -> None:
    kind = expect_object("thinking", value).get("type")
    if kind == "enabled":
        raise invalid_value(
            "thinking", "Seawall does not support extended thinking yet; remove 'thinking'."
        )
    if kind not in ("disabled", "adaptive"):
        raise invalid_value("thinking.type", f"{kind!r}; use 'disabled' or 'adaptive'.")


def _refuse_unknown(body: dict[str, Any]) -> None:
    for name in body:
        if name not in _KNOWN_FIELDS and name not in _IGNORED_FIELDS:
            raise InvalidRequest(
                f"Unknown parameter: '{name}'. Seawall's /v1/messages does not accept it.",
                param=name,
                code="unknown_parameter",
            )


def _sampling(body: dict[str, Any], chat: dict[str, Any]) -> None:
    if (value := body.get("temperature")) is not None:
        chat["temperature"] = expect_number("temperature", value, 0, 1)
    if (value := body.get("top_p")) is not None:
        chat["top_p"] = expect_number("top_p", value, 0, 1)
    if (value := body.get("top_k")) is not None:
        # Not an OpenAI field: OpenAI-compatible servers ignore it, Anthropic maps it back.
        chat["top_k"] = expect_integer("top_k", value, 0)
    if (value := body.get("stop_sequences")) is not None:
        stops = expect_array("stop_sequences", value)
        for index, stop in enumerate(stops):
            expect_string(f"stop_sequences[{index}]", stop, allow_empty=False)
        if stops:
            chat["stop"] = stops


def _tooling(body: dict[str, Any], chat: dict[str, Any]) -> None:
    tools = _tools(body["tools"]) if body.get("tools") is not None else []
    if tools:
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], tools, chat)
        if not tools:
            # Without tools every choice but a named tool (refused above) means "answer".
            del chat["tool_choice"]


def decode_messages(raw: bytes) -> dict[str, Any]:
    """Parse and check an Anthropic Messages request; return the canonical chat body."""
    body = parse_object(raw)
    _refuse_unknown(body)
    model = expect_string("model", _required(body, "model", "model"), allow_empty=False)
    max_tokens = expect_integer("max_tokens", _required(body, "max_tokens", "max_tokens"), 1)
    chat: dict[str, Any] = {
        "model": model,
        "messages": _conversation(body),
        "max_tokens": max_tokens,
    }
    _sampling(body, chat)
    _tooling(body, chat)
    if body.get("metadata") is not None:
        user = expect_object("metadata", body["metadata"]).get("user_id")
        if user is not None:
            chat["user"] = expect_string("metadata.user_id", user)
    if body.get("thinking") is not None:
        _thinking(body["thinking"])
    if body.get("output_config") is not None:
        _output_config(body["output_config"], chat)
    if body.get("stream") is not None and expect_boolean("stream", body["stream"]):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
