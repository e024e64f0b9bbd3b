"""Anthropic's wire format: the Messages API, plain and streamed."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from seawall.errors import AuthenticationFailed, InvalidRequest, SeawallError
from seawall.simulator import request_fields as fields
from seawall.simulator.answers import Completion
from seawall.simulator.context import SimulatorContext
from seawall.simulator.delivery import Event, dropped, hold, send_body, send_events
from seawall.simulator.faults import FaultKind
from seawall.simulator.schema_instance import minimal_instance

# Anthropic says "overloaded" with its own status rather than 503.
_OVERLOADED_STATUS = 529
_MALFORMED_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def error_response(
    error: SeawallError,
    extra_headers: Mapping[str, str] | None = None,
    *,
    status: int | None = None,
) -> web.Response:
    """An error in Anthropic's shape, with its status and headers."""
    headers = error.headers()
    if extra_headers:
        headers.update(extra_headers)
    headers["request-id"] = "req_" + secrets.token_hex(12)
    return web.Response(
        body=orjson.dumps(error.anthropic_body()),
        status=status or error.status,
        content_type="application/json",
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """The parts of a Messages API request the simulator acts on."""

    model: str
    prompt: str
    input_tokens: int
    max_tokens: int
    stops: tuple[str, ...]
    stream: bool
    tool: dict[str, Any] | None


class AnthropicWire:
    """The handler of /v1/messages."""

    def __init__(self, context: SimulatorContext) -> None:
        self._context = context

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/messages."""
        response = await self._messages(request)
        self._context.answered(request, response)
        return response

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        context = self._context
        try:
            self._authorize(request)
            call = parse_messages_request(await fields.read_json_object(request), context)
        except SeawallError as error:
            return error_response(error)
        fault = context.admit(request.path, call.model)
        if fault is not None and (failure := fault.error()) is not None:
            overloaded = fault.kind is FaultKind.UNAVAILABLE
            return error_response(
                failure,
                _rate_limit_headers(fault.error_headers(), fault.retry_after),
                status=_OVERLOADED_STATUS if overloaded else None,
            )
        completion = self._completion(call)
        message_id = "msg_" + secrets.token_hex(12)
        headers = {"request-id": "req_" + secrets.token_hex(12)}
        profile = context.profile
        if call.stream:
            if not await hold(request, fault, profile.latency_ms / 1000):
                return dropped()
            return await send_events(
                request,
                _stream_events(call, completion, message_id),
                fault,
                ttft_seconds=profile.ttft_ms / 1000,
                tokens_per_second=profile.tokens_per_second,
                malformed=_MALFORMED_EVENT,
                headers=headers,
            )
        delay = (profile.latency_ms + profile.ttft_ms) / 1000
        if profile.tokens_per_second > 0:
            delay += completion.tokens / profile.tokens_per_second
        if not await hold(request, fault, delay):
            return dropped()
        body = _message(call, completion, message_id, [_content_block(call, completion)])
        return await send_body(request, orjson.dumps(body), fault, headers)

    def _authorize(self, request: web.Request) -> None:
        # Anthropic takes x-api-key; recent SDKs send the key as a Bearer token instead.
        key = request.headers.get("x-api-key")
        if key is None:
            header = request.headers.get("Authorization", "")
            key = header[7:].strip() if header[:7].lower() == "bearer " else None
        if not self._context.authorized(key):
            raise AuthenticationFailed("invalid x-api-key")
        if "anthropic-version" not in request.headers:
            raise InvalidRequest("anthropic-version: header is required")

    def _completion(self, call: MessagesRequest) -> Completion:
        writer = self._context.writer
        if call.tool is not None:
            arguments = orjson.dumps(minimal_instance(call.tool.get("input_schema", {})))
            return writer.structured(arguments.decode())
        return writer.reply(call.prompt, max_tokens=call.max_tokens, stops=call.stops)


def parse_messages_request(body: dict[str, Any], context: SimulatorContext) -> MessagesRequest:
    """Check a Messages API body and pick out what shapes the answer."""
    model = fields.required_string(body, "model")
    max_tokens = fields.optional_int(body, "max_tokens", low=1, high=1 << 30)
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    messages = fields.message_list(body)
    system = _system_text(body.get("system"))
    tools = fields.function_tools(body.get("tools"))
    input_tokens = context.counter.count_messages(messages) + context.counter.count_text(system)
    if tools:
        input_tokens += context.counter.count_text(orjson.dumps(tools).decode())
    return MessagesRequest(
        model=model,
        prompt=fields.last_user_text(messages),
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        stops=fields.stop_strings(body, "stop_sequences", limit=8192),
        stream=fields.optional_bool(body, "stream"),
        tool=_called_tool(tools, body.get("tool_choice"), messages),
    )


def _system_text(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if isinstance(system, list) and all(
        isinstance(block, dict) and isinstance(block.get("text"), str) for block in system
    ):
        return "\n".join(block["text"] for block in system)
    raise InvalidRequest("system: must be a string or an array of text blocks", param="system")


def _called_tool(
    tools: list[dict[str, Any]], choice: Any, messages: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The tool the answer uses, or None for a text answer."""
    usable = [tool for tool in tools if isinstance(tool.get("name"), str)]
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    if not usable or kind == "none":
        return None
    if kind == "tool":
        name = choice.get("name") if isinstance(choice, dict) else None
        for tool in usable:
            if tool["name"] == name:
                return tool
        raise InvalidRequest(f"tool_choice names an unknown tool: {name!r}", param="tool_choice")
    # With "auto", a model that just received a tool result answers in words, so agent
    # loops against the simulator end.
    if kind == "auto" and _carries_tool_result(messages[-1]):
        return None
    return usable[0]


def _carries_tool_result(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _rate_limit_headers(headers: dict[str, str], retry_after: float) -> dict[str, str]:
    if not headers:
        return headers
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + retry_after))
    return {
        **headers,
        "anthropic-ratelimit-requests-limit": headers["x-ratelimit-limit-requests"],
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    }


def _stop(call: MessagesRequest, completion: Completion) -> tuple[str, str | None]:
    if call.tool is not None:
        return "tool_use", None
    if completion.stop_sequence is not None:
        return "stop_sequence", completion.stop_sequence
    return _STOP_REASONS[completion.finish], None


def _content_block(call: MessagesRequest, completion: Completion) -> dict[str, Any]:
    if call.tool is None:
        return {"type": "text", "text": completion.text}
    return {
        "type": "tool_use",
        "id": "toolu_" + secrets.token_hex(12),
        "name": call.tool["name"],
        "input": orjson.loads(completion.text),
    }


def _message(
    call: MessagesRequest, completion: Completion, message_id: str, content: list[dict[str, Any]]
) -> dict[str, Any]:
    stop_reason, stop_sequence = _stop(call, completion)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": call.input_tokens,
            "output_tokens": completion.tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _event(name: str, data: dict[str, Any], tokens: int = 0) -> Event:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n", tokens


def _stream_events(call: MessagesRequest, completion: Completion, message_id: str) -> list[Event]:
    """The event sequence the Messages API streams, with the tokens each carries."""
    start = _message(call, completion, message_id, [])
    start["stop_reason"] = start["stop_sequence"] = None
    start["usage"]["output_tokens"] = 1
    block = _content_block(call, completion)
    if call.tool is None:
        block["text"] = ""
        delta_kind, delta_key = "text_delta", "text"
    else:
        block["input"] = {}
        delta_kind, delta_key = "input_json_delta", "partial_json"
    events = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        _event("ping", {"type": "ping"}),
    ]
    for text, tokens in completion.pieces:
        delta = {"type": delta_kind, delta_key: text}
        events.append(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": delta},
                tokens,
            )
        )
    stop_reason, stop_sequence = _stop(call, completion)
    events += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": completion.tokens},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return events
