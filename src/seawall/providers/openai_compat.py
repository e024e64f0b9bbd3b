"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server, ...).

The canonical format is OpenAI's, so translation is thin: swap the model name,
ask for usage in streams, read usage back, and map error statuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from seawall.providers.base import ChatResult, EmbeddingResult, JSONObject, Usage
from seawall.providers.http_transport import HttpTransport, protocol_error, sse_events
from seawall.providers.retry_after import parse_retry_after
from seawall.tokens import TokenCounter

OPENAI_API_BASE = "https://api.openai.com/v1"


def map_error(
    deployment: Deployment, status: int, headers: CIMultiDictProxy[str], raw: bytes
) -> SeawallError:
    """An OpenAI-style error response as a Seawall error."""
    message, code = _error_detail(raw)
    where = f"Deployment '{deployment.name}' answered HTTP {status}"
    if status == 429:
        # "insufficient_quota" (billing exhausted) is kept: it parks the deployment.
        return UpstreamRateLimited(
            f"{where} (rate limited): {message}",
            retry_after=parse_retry_after(headers),
            code=code if code == "insufficient_quota" else None,
        )
    if status == 413:
        return BodyTooLarge(f"{where}: {message}")
    if code == "context_length_exceeded":
        return ContextWindowExceeded(message)
    if status in (400, 422):
        return InvalidRequest(message, code=code)
    if status in (401, 403):
        # The client's Seawall key was fine; Seawall's upstream credentials are not.
        return UpstreamRejected(f"{where}: the upstream rejected Seawall's credentials: {message}")
    if status == 404:
        return UpstreamRejected(f"{where}: {message}")
    if status == 408:
        return UpstreamTimeout(f"{where}: {message}")
    if status in (503, 529):
        return UpstreamUnavailable(f"{where}: {message}", retry_after=parse_retry_after(headers))
    return UpstreamError(f"{where}: {message}")


def _error_detail(raw: bytes) -> tuple[str, str | None]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:200].decode("utf-8", "replace").strip()
        return (text or "no error message"), None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        return str(error.get("message") or "no error message"), code if isinstance(
            code, str
        ) else None
    if isinstance(error, str):
        return error, None
    return "no error message", None


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    details = value.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(value.get("prompt_tokens") or 0),
        completion_tokens=int(value.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


class OpenAIBackend:
    """Talks the OpenAI wire format to any compatible server."""

    def __init__(self, transport: HttpTransport, counter: TokenCounter) -> None:
        self._transport = transport
        self.counter = counter
        self._headers: dict[str, dict[str, str]] = {}

    def usable(self, deployment: Deployment) -> bool:
        """Needs a key only when it talks to OpenAI itself."""
        return deployment.api_base is not None or bool(deployment.api_key)

    def _url(self, deployment: Deployment, path: str) -> str:
        return (deployment.api_base or OPENAI_API_BASE).rstrip("/") + path

    def _request_headers(self, deployment: Deployment) -> dict[str, str]:
        headers = self._headers.get(deployment.name)
        if headers is None:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if deployment.api_key:
                headers["Authorization"] = f"Bearer {deployment.api_key}"
            self._headers[deployment.name] = headers
        return headers

    async def _post_json(self, deployment: Deployment, path: str, body: JSONObject) -> JSONObject:
        raw = await self._transport.exchange(
            deployment,
            self._url(deployment, path),
            self._request_headers(deployment),
            orjson.dumps(body),
            map_error,
        )
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise protocol_error(deployment, "a response body that is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise protocol_error(deployment, "a JSON response that is not an object")
        return parsed

    async def chat(self, deployment: Deployment, body: JSONObject) -> ChatResult:
        """One chat completion."""
        answer = await self._post_json(deployment, "/chat/completions", body)
        if not isinstance(answer.get("choices"), list):
            raise protocol_error(deployment, "a chat completion without 'choices'")
        usage = _usage(answer.get("usage"))
        if usage is None:
            usage = self.counter.estimate_usage(body, _answer_text(answer))
            answer["usage"] = usage.as_openai()
        return ChatResult(answer, usage)

    async def embed(self, deployment: Deployment, body: JSONObject) -> EmbeddingResult:
        """One embeddings call."""
        answer = await self._post_json(deployment, "/embeddings", body)
        if not isinstance(answer.get("data"), list):
            raise protocol_error(deployment, "an embeddings response without 'data'")
        usage = _usage(answer.get("usage")) or Usage(estimated=True)
        return EmbeddingResult(answer, usage)

    async def open_stream(self, deployment: Deployment, body: JSONObject) -> OpenAIStream:
        """Start a streamed chat completion; usage is always requested upstream."""
        options = body.get("stream_options") or {}
        client_wants_usage = options.get("include_usage") is True
        upstream_body = {
            **body,
            "stream": True,
            "stream_options": {**options, "include_usage": True},
        }
        response = await self._transport.post(
            deployment,
            self._url(deployment, "/chat/completions"),
            {**self._request_headers(deployment), "Accept": "text/event-stream"},
            orjson.dumps(upstream_body),
            map_error,
        )
        return OpenAIStream(response, deployment, body, client_wants_usage, self)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()


def _answer_text(answer: JSONObject) -> str:
    texts: list[str] = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return "".join(texts)


class OpenAIStream:
    """An upstream OpenAI SSE stream, relayed chunk by chunk."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        deployment: Deployment,
        body: JSONObject,
        client_wants_usage: bool,
        backend: OpenAIBackend,
    ) -> None:
        self._response = response
        self._deployment = deployment
        self._body = body
        self._client_wants_usage = client_wants_usage
        self._backend = backend
        self.usage = Usage(estimated=True)

    async def __aiter__(self) -> AsyncIterator[JSONObject]:
        deployment = self._deployment
        upstream_usage: Usage | None = None
        pieces: list[str] = []
        finished = False
        last: JSONObject = {}
        try:
            async for _event, data in sse_events(deployment, self._response):
                if data == b"[DONE]":
                    finished = True
                    break
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise protocol_error(deployment, "a stream event that is not JSON") from None
                if not isinstance(chunk, dict):
                    raise protocol_error(deployment, "a stream event that is not an object")
                if "error" in chunk:
                    message, _ = _error_detail(data)
                    raise UpstreamError(
                        f"Deployment '{deployment.name}' failed mid-stream: {message}"
                    )
                choices = chunk.get("choices")
                if chunk.get("usage") is not None:
                    upstream_usage = _usage(chunk["usage"])
                    if not self._client_wants_usage:
                        if not choices:
                            continue
                        chunk = {**chunk, "usage": None}
                for choice in choices or ():
                    delta = choice.get("delta") if isinstance(choice, dict) else None
                    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                        pieces.append(delta["content"])
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        finished = True
                last = chunk
                yield chunk
        finally:
            if finished:
                self._response.release()
            else:
                self._response.close()
            self.usage = upstream_usage or self._backend.counter.estimate_usage(
                self._body, "".join(pieces)
            )
        if not finished:
            raise UpstreamError(
                f"Deployment '{deployment.name}' ended the stream before it finished."
            )
        if self._client_wants_usage and upstream_usage is None:
            # Some servers (llama.cpp's) ignore include_usage; the client asked, so count.
            yield {
                "id": last.get("id", ""),
                "object": "chat.completion.chunk",
                "created": last.get("created", 0),
                "model": last.get("model", self._body.get("model", "")),
                "choices": [],
                "usage": self.usage.as_openai(),
            }

    async def aclose(self) -> None:
        """Drop the upstream connection (the client went away)."""
        self._response.close()
