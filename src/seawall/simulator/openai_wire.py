"""OpenAI's wire format: chat completions (plain and streamed), embeddings and models."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web

from seawall.errors import AuthenticationFailed, InvalidRequest, SeawallError
from seawall.simulator import request_fields as fields
from seawall.simulator.answers import Completion
from seawall.simulator.context import SimulatorContext
from seawall.simulator.delivery import Event, dropped, hold, send_body, send_events
from seawall.simulator.embeddings import embedding_inputs, encode_vector, unit_vector
from seawall.simulator.logprobs import token_logprobs
from seawall.simulator.schema_instance import minimal_instance

_FINGERPRINT = "fp_seawall_simulator"
_MODELS = ("simulator-chat", "simulator-embed")
_MODELS_CREATED = 1_700_000_000
_MAX_CHOICES = 128
_DEFAULT_DIMENSIONS = 384
_MAX_DIMENSIONS = 8192
_MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "\n\n'

ResponseFormat = Literal["text", "json_object", "json_schema"]


def error_response(
    error: SeawallError, extra_headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error in OpenAI's shape, with its status and headers."""
    headers = error.headers()
    if extra_headers:
        headers.update(extra_headers)
    return web.Response(
        body=orjson.dumps(error.openai_body()),
        status=error.status,
        content_type="application/json",
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completion request the simulator acts on."""

    model: str
    prompt: str
    # The system messages' text, for scripted answers that repeat it ({system}).
    system: str
    prompt_tokens: int
    n: int
    stream: bool
    include_usage: bool
    max_tokens: int | None
    stops: tuple[str, ...]
    top_logprobs: int | None
    tool: dict[str, Any] | None
    response_format: ResponseFormat
    schema: Any


@dataclass(frozen=True, slots=True)
class ChoiceAnswer:
    """One choice's answer: text, or a tool call whose arguments are the completion."""

    completion: Completion
    tool_name: str | None = None
    tool_call_id: str | None = None

    @property
    def finish_reason(self) -> str:
        """OpenAI's finish_reason for this choice."""
        return "tool_calls" if self.tool_name is not None else self.completion.finish


class OpenAIWire:
    """The handlers of the OpenAI-format routes."""

    def __init__(self, context: SimulatorContext) -> None:
        self._context = context

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        response = await self._chat_completions(request)
        self._context.answered(request, response)
        return response

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/embeddings."""
        response = await self._embeddings(request)
        self._context.answered(request, response)
        return response

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        context = self._context
        try:
            self._authorize(request)
            chat = parse_chat_request(await fields.read_json_object(request), context)
        except SeawallError as error:
            return error_response(error)
        fault = context.admit(request.path, chat.model)
        if fault is not None and (failure := fault.error()) is not None:
            return error_response(failure, fault.error_headers())
        answers = [self._answer(chat, index) for index in range(chat.n)]
        completion_tokens = sum(_answer_tokens(answer, context) for answer in answers)
        usage = _usage(chat.prompt_tokens, completion_tokens)
        profile = context.profile
        reply_id = "chatcmpl-" + secrets.token_hex(12)
        headers = {"x-request-id": "req_" + secrets.token_hex(12)}
        if chat.stream:
            if not await hold(request, fault, profile.latency_ms / 1000):
                return dropped()
            events = _stream_events(chat, answers, usage, reply_id)
            return await send_events(
                request,
                events,
                fault,
                ttft_seconds=profile.ttft_ms / 1000,
                tokens_per_second=profile.tokens_per_second,
                malformed=_MALFORMED_EVENT,
                headers=headers,
            )
        delay = (profile.latency_ms + profile.ttft_ms) / 1000
        if profile.tokens_per_second > 0:
            delay += completion_tokens / profile.tokens_per_second
        if not await hold(request, fault, delay):
            return dropped()
        body = orjson.dumps(_completion_body(chat, answers, usage, reply_id))
        return await send_body(request, body, fault, headers)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        context = self._context
        try:
            self._authorize(request)
            body = await fields.read_json_object(request)
            model = fields.required_string(body, "model")
            inputs = embedding_inputs(body.get("input"), context.counter)
            dimensions = fields.optional_int(body, "dimensions", low=1, high=_MAX_DIMENSIONS)
            encoding = body.get("encoding_format") or "float"
            if encoding not in ("float", "base64"):
                raise InvalidRequest(
                    "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
                )
        except SeawallError as error:
            return error_response(error)
        fault = context.admit(request.path, model)
        if fault is not None and (failure := fault.error()) is not None:
            return error_response(failure, fault.error_headers())
        size = dimensions or _DEFAULT_DIMENSIONS
        tokens = sum(count for _, count in inputs)
        payload = {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": encode_vector(unit_vector(key, size), encoding),
                }
                for index, (key, _) in enumerate(inputs)
            ],
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if not await hold(request, fault, context.profile.latency_ms / 1000):
            return dropped()
        encoded = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = {"x-request-id": "req_" + secrets.token_hex(12)}
        return await send_body(request, encoded, fault, headers)

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models."""
        try:
            self._authorize(request)
        except SeawallError as error:
            return error_response(error)
        self._context.stats.requests[request.path] += 1
        body = {"object": "list", "data": [_model(name) for name in _MODELS]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def retrieve_model(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models/{model}: every model exists here."""
        try:
            self._authorize(request)
        except SeawallError as error:
            return error_response(error)
        self._context.stats.requests["/v1/models/{model}"] += 1
        body = orjson.dumps(_model(request.match_info["model"]))
        return web.Response(body=body, content_type="application/json")

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else None
        if not self._context.authorized(key):
            raise AuthenticationFailed("Incorrect API key provided.")

    def _answer(self, chat: ChatRequest, index: int) -> ChoiceAnswer:
        writer = self._context.writer
        if chat.tool is not None:
            arguments = orjson.dumps(minimal_instance(chat.tool.get("parameters", {})))
            return ChoiceAnswer(
                writer.structured(arguments.decode()),
                tool_name=str(chat.tool["name"]),
                tool_call_id="call_" + secrets.token_hex(12),
            )
        if chat.response_format == "text":
            return ChoiceAnswer(
                writer.reply(
                    chat.prompt,
                    choice=index,
                    max_tokens=chat.max_tokens,
                    stops=chat.stops,
                    system=chat.system,
                )
            )
        if chat.response_format == "json_object":
            value = {"answer": writer.reply(chat.prompt, choice=index).text}
        else:
            value = minimal_instance(chat.schema)
        text = orjson.dumps(value).decode()
        return ChoiceAnswer(writer.structured(text, max_tokens=chat.max_tokens, stops=chat.stops))


def parse_chat_request(body: dict[str, Any], context: SimulatorContext) -> ChatRequest:
    """Check a chat completion body and pick out what shapes the answer."""
    model = fields.required_string(body, "model")
    messages = fields.message_list(body)
    max_tokens = fields.optional_int(body, "max_completion_tokens", low=1, high=1 << 30)
    if max_tokens is None:
        max_tokens = fields.optional_int(body, "max_tokens", low=1, high=1 << 30)
    top_logprobs = fields.optional_int(body, "top_logprobs", low=0, high=20)
    logprobs = fields.optional_bool(body, "logprobs")
    if top_logprobs is not None and not logprobs:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="logprobs")
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    tools = fields.function_tools(body.get("tools"))
    response_format, schema = _response_format(body.get("response_format"))
    prompt_tokens = context.counter.count_messages(messages)
    if tools:
        prompt_tokens += context.counter.count_text(orjson.dumps(tools).decode())
    return ChatRequest(
        model=model,
        prompt=fields.last_user_text(messages),
        system=fields.system_text(messages),
        prompt_tokens=prompt_tokens,
        n=fields.optional_int(body, "n", low=1, high=_MAX_CHOICES) or 1,
        stream=fields.optional_bool(body, "stream"),
        include_usage=include_usage,
        max_tokens=max_tokens,
        stops=fields.stop_strings(body, "stop", limit=4),
        top_logprobs=(top_logprobs or 0) if logprobs else None,
        tool=_called_tool(tools, body.get("tool_choice"), messages),
        response_format=response_format,
        schema=schema,
    )


def _called_tool(
    tools: list[dict[str, Any]], choice: Any, messages: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The function the answer calls, or None for a text answer."""
    functions: list[dict[str, Any]] = [
        tool["function"]
        for tool in tools
        if tool.get("type", "function") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for function in functions:
            if function["name"] == name:
                return function
        raise InvalidRequest(
            f"tool_choice names an unknown function: {name!r}", param="tool_choice"
        )
    # With "auto", a model that just received a tool result answers in words, so agent
    # loops against the simulator end.
    if choice != "required" and messages[-1].get("role") == "tool":
        return None
    return functions[0]


def _response_format(value: Any) -> tuple[ResponseFormat, Any]:
    if value is None:
        return "text", None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return "text", None
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = value.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema", {}), dict):
            return "json_schema", spec.get("schema", {})
    raise InvalidRequest(
        "'response_format' must be text, json_object or json_schema with a schema.",
        param="response_format",
    )


def _answer_tokens(answer: ChoiceAnswer, context: SimulatorContext) -> int:
    if answer.tool_name is None:
        return answer.completion.tokens
    return answer.completion.tokens + context.counter.count_text(answer.tool_name)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _MODELS_CREATED, "owned_by": "seawall"}


def _tool_call(answer: ChoiceAnswer, arguments: str) -> dict[str, Any]:
    return {
        "id": answer.tool_call_id,
        "type": "function",
        "function": {"name": answer.tool_name, "arguments": arguments},
    }


def _completion_body(
    chat: ChatRequest, answers: list[ChoiceAnswer], usage: dict[str, Any], reply_id: str
) -> dict[str, Any]:
    choices = []
    for index, answer in enumerate(answers):
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        logprobs: dict[str, Any] | None = None
        if answer.tool_name is not None:
            message["content"] = None
            message["tool_calls"] = [_tool_call(answer, answer.completion.text)]
        else:
            message["content"] = answer.completion.text
            if chat.top_logprobs is not None:
                tokens = (text for text, _ in answer.completion.pieces)
                logprobs = {"content": token_logprobs(tokens, chat.top_logprobs), "refusal": None}
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": answer.finish_reason,
            }
        )
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "system_fingerprint": _FINGERPRINT,
        "service_tier": "default",
        "choices": choices,
        "usage": usage,
    }


def _stream_events(
    chat: ChatRequest, answers: list[ChoiceAnswer], usage: dict[str, Any], reply_id: str
) -> list[Event]:
    """Every chunk of the stream, the way OpenAI orders them, with the tokens each carries."""
    head = {
        "id": reply_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": chat.model,
        "system_fingerprint": _FINGERPRINT,
        "service_tier": "default",
    }
    if chat.include_usage:
        head["usage"] = None

    # Every chunk shares its head; serialise it once and splice each choice in.
    prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":['

    def event(index: int, delta: dict[str, Any], tokens: int = 0, **rest: Any) -> Event:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None, **rest}
        return prefix + orjson.dumps(choice) + b"]}\n\n", tokens

    events: list[Event] = []
    for index, answer in enumerate(answers):
        if answer.tool_name is None:
            delta: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        else:
            delta = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [{"index": 0, **_tool_call(answer, "")}],
            }
        events.append(event(index, delta))
    longest = max(len(answer.completion.pieces) for answer in answers)
    for position in range(longest):
        for index, answer in enumerate(answers):
            if position >= len(answer.completion.pieces):
                continue
            text, tokens = answer.completion.pieces[position]
            if answer.tool_name is not None:
                call = {"index": 0, "function": {"arguments": text}}
                events.append(event(index, {"tool_calls": [call]}, tokens))
            elif chat.top_logprobs is not None:
                logprobs = {"content": token_logprobs((text,), chat.top_logprobs), "refusal": None}
                events.append(event(index, {"content": text}, tokens, logprobs=logprobs))
            else:
                events.append(event(index, {"content": text}, tokens))
    for index, answer in enumerate(answers):
        events.append(event(index, {}, finish_reason=answer.finish_reason))
    if chat.include_usage:
        body = {**head, "choices": [], "usage": usage}
        events.append((b"data: " + orjson.dumps(body) + b"\n\n", 0))
    events.append((b"data: [DONE]\n\n", 0))
    return events
