"""Translating Seawall's canonical (OpenAI) chat body into an Anthropic Messages request.

What Anthropic cannot honour is refused with ``UnsupportedParameter`` naming
the deployment, never approximated: a JSON schema asked for in
``response_format`` is not the same as a sentence in the system prompt asking
for JSON, and a client relying on it must hear so.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from seawall.config.schema import Deployment
from seawall.errors import InvalidRequest, UnsupportedParameter
from seawall.providers.base import JSONObject

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def _unsupported(deployment: Deployment, param: str, what: str) -> UnsupportedParameter:
    return UnsupportedParameter(
        f"Deployment '{deployment.name}' (Anthropic) does not support {what}.", param=param
    )


def _refuse_unsupported(deployment: Deployment, body: JSONObject) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise _unsupported(deployment, "n", "more than one choice per request; send 'n': 1")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise _unsupported(
            deployment,
            "response_format",
            f"'response_format' of type {response_format.get('type')!r}",
        )
    if body.get("logprobs") or body.get("top_logprobs"):
        raise _unsupported(deployment, "logprobs", "'logprobs'")
    if body.get("logit_bias"):
        raise _unsupported(deployment, "logit_bias", "'logit_bias'")
    for penalty in ("presence_penalty", "frequency_penalty"):
        if body.get(penalty):
            raise _unsupported(deployment, penalty, f"'{penalty}'")


def _text_blocks(deployment: Deployment, where: str, content: Any) -> list[JSONObject]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSONObject] = []
    for index, part in enumerate(content if isinstance(content, list) else ()):
        blocks.extend(_text_part(deployment, f"{where}.content[{index}]", part))
    return blocks


def _text_part(deployment: Deployment, where: str, part: Any) -> list[JSONObject]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in ("text", "refusal"):
        raise _unsupported(deployment, f"{where}.type", f"{kind!r} content parts here")
    text = part.get(kind)
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _image(where: str, part: JSONObject) -> JSONObject:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise InvalidRequest(
            f"Missing required parameter: '{where}.image_url.url'.",
            param=f"{where}.image_url.url",
            code="missing_required_parameter",
        )
    if match := _DATA_URL.fullmatch(url):
        source = {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
    elif url.startswith("data:"):
        raise InvalidRequest(
            f"Invalid value for '{where}.image_url.url': a data URL must be base64 "
            "('data:<media type>;base64,<data>').",
            param=f"{where}.image_url.url",
            code="invalid_value",
        )
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _user_blocks(deployment: Deployment, where: str, content: Any) -> list[JSONObject]:
    if not isinstance(content, list):
        return _text_blocks(deployment, where, content)
    blocks: list[JSONObject] = []
    for index, part in enumerate(content):
        part_where = f"{where}.content[{index}]"
        if isinstance(part, dict) and part.get("type") == "image_url":
            blocks.append(_image(part_where, part))
        else:
            blocks.extend(_text_part(deployment, part_where, part))
    return blocks


def _tool_input(arguments: Any) -> JSONObject:
    # Models sometimes emit arguments that are not JSON, and apps echo them back in the
    # history; OpenAI takes any string there, Anthropic needs an object.
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _assistant_blocks(deployment: Deployment, where: str, message: JSONObject) -> list[JSONObject]:
    blocks = _text_blocks(deployment, where, message.get("content"))
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise InvalidRequest(
                f"Invalid value for '{where}.tool_calls[{index}]': expected an object with "
                "'id' and 'function'.",
                param=f"{where}.tool_calls[{index}]",
                code="invalid_value",
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": str(function.get("name") or ""),
                "input": _tool_input(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(deployment: Deployment, where: str, message: JSONObject) -> JSONObject:
    content = message.get("content")
    result: JSONObject = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id"))}
    if isinstance(content, list):
        result["content"] = _text_blocks(deployment, where, content)
    elif isinstance(content, str) and content:
        result["content"] = content
    return result


def _conversation(
    deployment: Deployment, messages: list[JSONObject]
) -> tuple[list[JSONObject], list[JSONObject]]:
    """System blocks, and the turns with consecutive same-role messages merged."""
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            # Anthropic has one system prompt, before the conversation.
            system.extend(_text_blocks(deployment, where, message.get("content")))
            continue
        if role == "user":
            blocks = _user_blocks(deployment, where, message.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(deployment, where, message)
        elif role == "tool":
            role, blocks = "user", [_tool_result(deployment, where, message)]
        else:
            raise _unsupported(deployment, f"{where}.role", f"messages with role {role!r}")
        if not blocks:
            continue
        # Tool results for parallel calls must share one user turn.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tools(deployment: Deployment, tools: list[Any]) -> list[JSONObject]:
    out: list[JSONObject] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type", "function") if isinstance(tool, dict) else None
        function = tool.get("function") if isinstance(tool, dict) else None
        if kind != "function" or not isinstance(function, dict):
            raise _unsupported(deployment, f"tools[{index}].type", "tools other than functions")
        parameters = function.get("parameters")
        spec: JSONObject = {
            "name": function.get("name"),
            "input_schema": parameters
            if isinstance(parameters, dict)
            else {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            spec["description"] = function["description"]
        out.append(spec)
    return out


def _tool_choice(choice: Any, parallel: Any) -> JSONObject:
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        mapped: JSONObject = {"type": "tool", "name": name}
    else:
        mapped = dict(_TOOL_CHOICES.get(choice, _TOOL_CHOICES["auto"]))
    if parallel is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    return mapped


def messages_request(deployment: Deployment, body: JSONObject) -> JSONObject:
    """The Messages API request for a canonical chat body, or ``UnsupportedParameter``."""
    _refuse_unsupported(deployment, body)
    system, turns = _conversation(deployment, body.get("messages") or [])
    request: JSONObject = {
        "model": body.get("model") or deployment.model,
        # Anthropic requires a limit; OpenAI clients usually leave it out.
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or deployment.max_output_tokens,
        "messages": turns,
    }
    if system:
        request["system"] = system[0]["text"] if len(system) == 1 else system
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        # OpenAI's range is 0..2, Anthropic's 0..1.
        request["temperature"] = min(max(float(temperature), 0.0), 1.0)
    for name in ("top_p", "top_k"):
        if body.get(name) is not None:
            request[name] = body[name]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = body.get("tools")
    if tools:
        request["tools"] = _tools(deployment, tools)
        if body.get("tool_choice") is not None or body.get("parallel_tool_calls") is False:
            request["tool_choice"] = _tool_choice(
                body.get("tool_choice"), body.get("parallel_tool_calls")
            )
    if isinstance(body.get("user"), str) and body["user"]:
        request["metadata"] = {"user_id": body["user"]}
    return request
