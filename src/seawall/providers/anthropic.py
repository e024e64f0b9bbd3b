"""Anthropic's Messages API behind Seawall's canonical (OpenAI) format.

Requests are translated in ``anthropic_request``; this module sends them,
translates answers and stream events back into OpenAI shapes, and maps
Anthropic's error statuses and error events onto Seawall's tree in one place
(``map_error`` and ``_error``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from seawall.config.schema import Deployment
from seawall.errors import (
    BodyTooLarge,
    ContextWindowExceeded,
    InvalidRequest,
    SeawallError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from seawall.providers.anthropic_request import messages_request
from seawall.providers.base import ChatResult, EmbeddingResult, JSONObject, Usage
from seawall.providers.http_transport import HttpTransport, protocol_error, sse_events
from seawall.providers.retry_after import parse_retry_after
from seawall.tokens import TokenCounter

ANTHROPIC_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status each error type of a mid-stream ``error`` event stands for.
_EVENT_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_RATE_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


def map_error(
    deployment: Deployment, status: int, headers: CIMultiDictProxy[str], raw: bytes
) -> SeawallError:
    """An Anthropic error response as a Seawall error."""
    message = _error_message(raw)
    where = f"Deployment '{deployment.name}' answered HTTP {status}"
    return _error(status, message, where, retry_after(headers))


def _error(status: int, message: str, where: str, wait: float | None) -> SeawallError:
    if status == 429:
        return UpstreamRateLimited(f"{where} (rate limited): {message}", retry_after=wait)
    if status == 413:
        return BodyTooLarge(f"{where}: {message}")
    if status == 400:
        # Anthropic has no error code for it; its message says "prompt is too long".
        if "prompt is too long" in message.lower():
            return ContextWindowExceeded(message)
        return InvalidRequest(message)
    if status in (401, 403):
        # The client's Seawall key was fine; Seawall's upstream credentials are not.
        return UpstreamRejected(f"{where}: the upstream rejected Seawall's credentials: {message}")
    if status == 404:
        return UpstreamRejected(f"{where}: {message}")
    if status in (408, 504):
        return UpstreamTimeout(f"{where}: {message}")
    if status in (503, 529):
        return UpstreamUnavailable(f"{where} (overloaded): {message}", retry_after=wait)
    return UpstreamError(f"{where}: {message}")


def _error_message(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode("utf-8", "replace").strip() or "no error message"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return "no error message"


def stream_error(deployment: Deployment, event: JSONObject) -> SeawallError:
    """A mid-stream ``error`` event as a Seawall error."""
    error = event.get("error")
    error = error if isinstance(error, dict) else {}
    kind = error.get("type")
    status = _EVENT_STATUS.get(kind, 500) if isinstance(kind, str) else 500
    message = str(error.get("message") or "no error message")
    where = f"Deployment '{deployment.name}' failed mid-stream ({kind or 'unknown error'})"
    return _error(status, message, where, None)


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait: ``retry-after`` first, else the reset time of an exhausted limit."""
    wait = parse_retry_after(headers)
    if wait is not None:
        return wait
    now = now or datetime.now(UTC)
    waits: list[float] = []
    for limit in _RATE_LIMITS:
        if headers.get(f"anthropic-ratelimit-{limit}-remaining") != "0":
            continue
        try:
            reset = datetime.fromisoformat(headers.get(f"anthropic-ratelimit-{limit}-reset", ""))
        except ValueError:
            continue
        if reset.tzinfo is None:
            reset = reset.replace(tzinfo=UTC)
        waits.append(max(0.0, (reset - now).total_seconds()))
    return max(waits) if waits else None


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    counts = _UsageCounts()
    counts.update(value)
    return counts.usage()


class _UsageCounts:
    """Anthropic usage as it accumulates over a stream; later reports overwrite earlier ones."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "seen")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = 0
        self.seen = False

    def update(self, value: Any) -> None:
        if not isinstance(value, dict):
            return
        for key, attribute in (
            ("input_tokens", "input"),
            ("output_tokens", "output"),
            ("cache_read_input_tokens", "cache_read"),
            ("cache_creation_input_tokens", "cache_write"),
        ):
            count = value.get(key)
            if isinstance(count, int) and not isinstance(count, bool):
                setattr(self, attribute, count)
                self.seen = True

    def usage(self) -> Usage:
        # Anthropic's input_tokens leave out cached ones; OpenAI's prompt_tokens include them.
        return Usage(
            prompt_tokens=self.input + self.cache_read + self.cache_write,
            completion_tokens=self.output,
            cached_tokens=self.cache_read,
        )


def _openai_usage(usage: Usage) -> JSONObject:
    return {**usage.as_openai(), "prompt_tokens_details": {"cached_tokens": usage.cached_tokens}}


def _completion_id(message_id: Any) -> str:
    text = message_id if isinstance(message_id, str) and message_id else f"{time.time_ns():x}"
    return "chatcmpl-" + text.removeprefix("msg_")


def _finish(choice: JSONObject, stop_reason: Any, stop_sequence: Any) -> None:
    choice["finish_reason"] = _FINISH_REASONS.get(stop_reason, "stop") if stop_reason else None
    if stop_reason == "stop_sequence" and isinstance(stop_sequence, str):
        # vLLM's convention for which stop string ended the answer; Seawall's Anthropic
        # inbound reads it back as stop_sequence.
        choice["stop_reason"] = stop_sequence


def _completion(deployment: Deployment, answer: JSONObject) -> JSONObject:
    content = answer.get("content")
    if not isinstance(content, list):
        raise protocol_error(deployment, "a message without a 'content' array")
    texts: list[str] = []
    calls: list[JSONObject] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: JSONObject = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    choice: JSONObject = {"index": 0, "message": message, "logprobs": None}
    _finish(choice, answer.get("stop_reason") or "end_turn", answer.get("stop_sequence"))
    return {
        "id": _completion_id(answer.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("model") or deployment.model,
        "choices": [choice],
    }


class AnthropicBackend:
    """Talks Anthropic's Messages API."""

    def __init__(self, transport: HttpTransport, counter: TokenCounter) -> None:
        self._transport = transport
        self.counter = counter
        self._headers: dict[str, dict[str, str]] = {}

    def usable(self, deployment: Deployment) -> bool:
        """Needs a key unless it talks to an endpoint of the operator's choosing."""
        return deployment.api_base is not None or bool(deployment.api_key)

    def _url(self, deployment: Deployment) -> str:
        # Anthropic's base URL has no /v1 (its SDK adds it); forgive one given with it.
        base = (deployment.api_base or ANTHROPIC_API_BASE).rstrip("/").removesuffix("/v1")
        return base + "/v1/messages"

    def _request_headers(self, deployment: Deployment) -> dict[str, str]:
        headers = self._headers.get(deployment.name)
        if headers is None:
            headers = {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "anthropic-version": ANTHROPIC_VERSION,
            }
            if deployment.api_key:
                headers["x-api-key"] = deployment.api_key
            self._headers[deployment.name] = headers
        return headers

    async def chat(self, deployment: Deployment, body: JSONObject) -> ChatResult:
        """One message, answered as an OpenAI chat completion."""
        request = messages_request(deployment, body)
        raw = await self._transport.exchange(
            deployment,
            self._url(deployment),
            self._request_headers(deployment),
            orjson.dumps(request),
            map_error,
        )
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise protocol_error(deployment, "a response body that is not valid JSON") from None
        if not isinstance(answer, dict):
            raise protocol_error(deployment, "a JSON response that is not an object")
        if answer.get("type") == "error":
            raise stream_error(deployment, answer)
        completion = _completion(deployment, answer)
        usage = _usage(answer.get("usage"))
        if usage is None:
            usage = self.counter.estimate_usage(
                body, completion["choices"][0]["message"]["content"] or ""
            )
        completion["usage"] = _openai_usage(usage)
        return ChatResult(completion, usage)

    async def open_stream(self, deployment: Deployment, body: JSONObject) -> AnthropicStream:
        """Start a streamed message, relayed as OpenAI chunks."""
        request = {**messages_request(deployment, body), "stream": True}
        response = await self._transport.post(
            deployment,
            self._url(deployment),
            {**self._request_headers(deployment), "Accept": "text/event-stream"},
            orjson.dumps(request),
            map_error,
        )
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        return AnthropicStream(response, deployment, body, wants_usage, self)

    async def embed(self, deployment: Deployment, body: JSONObject) -> EmbeddingResult:
        """Anthropic offers no embeddings."""
        raise InvalidRequest(
            f"Deployment '{deployment.name}' is an Anthropic model, and Anthropic has no "
            "embeddings API; use an embeddings model.",
            param="model",
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()


class AnthropicStream:
    """An upstream Anthropic event stream, relayed as OpenAI chunks."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        deployment: Deployment,
        body: JSONObject,
        client_wants_usage: bool,
        backend: AnthropicBackend,
    ) -> None:
        self._response = response
        self._deployment = deployment
        self._body = body
        self._client_wants_usage = client_wants_usage
        self._backend = backend
        self._counts = _UsageCounts()
        self._id = _completion_id(None)
        self._model = deployment.model
        self._created = int(time.time())
        self._tools: dict[Any, int] = {}
        self._pieces: list[str] = []
        self.usage = Usage(estimated=True)

    def _chunk(self, delta: JSONObject) -> JSONObject:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        deployment = self._deployment
        finished = False
        try:
            async for event, data in sse_events(deployment, self._response):
                if event == "ping":
                    continue
                try:
                    payload = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise protocol_error(deployment, "a stream event that is not JSON") from None
                if not isinstance(payload, dict):
                    raise protocol_error(deployment, "a stream event that is not an object")
                kind = payload.get("type") or event
                if kind == "error":
                    raise stream_error(deployment, payload)
                if kind == "message_stop":
                    finished = True
                    break
                chunk = self._translate(kind, payload)
                if chunk is not None:
                    yield chunk
            if finished and self._client_wants_usage:
                usage = self._final_usage()
                yield {**self._chunk({}), "choices": [], "usage": _openai_usage(usage)}
        finally:
            if finished:
                self._response.release()
            else:
                self._response.close()
            self.usage = self._final_usage()
        if not finished:
            raise UpstreamError(
                f"Deployment '{deployment.name}' ended the stream before it finished."
            )

    def _translate(self, kind: Any, payload: JSONObject) -> JSONObject | None:
        """The OpenAI chunk one Anthropic event becomes, if any."""
        if kind == "message_start":
            return self._message_start(payload.get("message"))
        if kind == "content_block_start":
            return self._block_start(payload.get("index"), payload.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index"), payload.get("delta"))
        if kind == "message_delta":
            self._counts.update(payload.get("usage"))
            delta = payload.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                chunk = self._chunk({})
                _finish(chunk["choices"][0], delta["stop_reason"], delta.get("stop_sequence"))
                return chunk
        # content_block_stop and events Seawall does not know carry nothing to relay.
        return None

    def _message_start(self, message: Any) -> JSONObject:
        if isinstance(message, dict):
            self._id = _completion_id(message.get("id"))
            self._model = message.get("model") or self._model
            self._counts.update(message.get("usage"))
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, index: Any, block: Any) -> JSONObject | None:
        if not isinstance(block, dict):
            return None
        if block.get("type") == "tool_use":
            position = len(self._tools)
            self._tools[index] = position
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return self._text(block["text"])
        return None

    def _block_delta(self, index: Any, delta: Any) -> JSONObject | None:
        if not isinstance(delta, dict):
            return None
        if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
            return self._text(delta["text"])
        position = self._tools.get(index)
        fragment = delta.get("partial_json")
        if delta.get("type") == "input_json_delta" and position is not None and fragment:
            call = {"index": position, "function": {"arguments": fragment}}
            return self._chunk({"tool_calls": [call]})
        return None

    def _text(self, text: str) -> JSONObject:
        self._pieces.append(text)
        return self._chunk({"content": text})

    def _final_usage(self) -> Usage:
        if self._counts.seen:
            return self._counts.usage()
        return self._backend.counter.estimate_usage(self._body, "".join(self._pieces))

    async def aclose(self) -> None:
        """Drop the upstream connection (the client went away)."""
        self._response.close()
