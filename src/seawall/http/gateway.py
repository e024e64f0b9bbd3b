"""Request handlers: turn HTTP into a pipeline run and the reply into the client's format."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from seawall.config.schema import Operation
from seawall.errors import ModelNotFound, SeawallError, ServiceUnavailable, ShutDownMidway
from seawall.http.body import read_body
from seawall.http.disconnect import unless_client_leaves
from seawall.http.identity import identity_of, request_identity
from seawall.http.incoming import Incoming
from seawall.http.request_options import read_deadline, read_priority
from seawall.http.responses import (
    SSE_HEADERS,
    anthropic_error,
    as_seawall_error,
    json_response,
    openai_error,
)
from seawall.inbound.anthropic_messages import AnthropicStreamEncoder, render_message
from seawall.pipeline.context import Protocol, RequestContext
from seawall.pipeline.pipeline import Reply
from seawall.providers.base import ChatResult, ChatStream, EmbeddingResult
from seawall.services import Services
from seawall.tenancy.principal import Principal

logger = logging.getLogger("seawall.http")

# Models have no creation date of their own; a fixed one keeps /v1/models stable.
_MODEL_CREATED = 1_700_000_000


class Gateway:
    """The serving API; ``services`` is set by the app's lifespan before traffic arrives."""

    def __init__(self) -> None:
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        """The running gateway's parts."""
        if self._services is None:
            raise ServiceUnavailable("Seawall is starting; retry in a moment.")
        return self._services

    @property
    def current(self) -> Services | None:
        """The parts, or None while starting or stopped."""
        return self._services

    def attach(self, services: Services | None) -> None:
        """Start (or, with None, stop) serving with these parts."""
        self._services = services

    async def _run(
        self, incoming: Incoming, protocol: Protocol, operation: Operation
    ) -> tuple[RequestContext, Reply]:
        services = self.services
        headers = incoming.headers
        ctx = RequestContext(
            request_id=incoming.request_id,
            protocol=protocol,
            operation=operation,
            raw_body=await read_body(
                headers, incoming.receive, services.settings.server.max_body_bytes
            ),
            identity=request_identity(headers, incoming.peer, services.tenancy.client_address),
            deadline=read_deadline(headers, services.resilience.clock.now()),
            priority=read_priority(headers),
            cache_control=headers.get("cache-control"),
            traceparent=headers.get("traceparent"),
        )
        try:
            return ctx, await unless_client_leaves(incoming.receive, services.pipeline.run(ctx))
        except asyncio.CancelledError:
            # Cut by the end of a shutdown's grace period (``http.drain``): the client gets
            # an error in its own format instead of the server's bare 500.
            task = asyncio.current_task()
            if services.stopping.past_grace and task is not None and task.uncancel() == 0:
                raise ShutDownMidway(
                    "This Seawall instance shut down before the answer finished; retry."
                ) from None
            raise

    async def chat_completions(self, incoming: Incoming) -> Response:
        """POST /v1/chat/completions."""
        try:
            ctx, reply = await self._run(incoming, "openai", "chat")
        except Exception as exc:
            return openai_error(as_seawall_error(exc, incoming.request_id))
        if isinstance(reply, ChatResult):
            return json_response(reply.body, headers=ctx.response_headers)
        assert not isinstance(reply, EmbeddingResult)
        return StreamingResponse(
            _openai_sse(ctx, reply),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **ctx.response_headers},
        )

    async def embeddings(self, incoming: Incoming) -> Response:
        """POST /v1/embeddings."""
        try:
            ctx, reply = await self._run(incoming, "openai", "embeddings")
        except Exception as exc:
            return openai_error(as_seawall_error(exc, incoming.request_id))
        assert isinstance(reply, EmbeddingResult)
        return json_response(reply.body, headers=ctx.response_headers)

    async def messages(self, incoming: Incoming) -> Response:
        """POST /v1/messages (Anthropic's wire format)."""
        try:
            ctx, reply = await self._run(incoming, "anthropic", "chat")
        except Exception as exc:
            return anthropic_error(as_seawall_error(exc, incoming.request_id))
        model = str(ctx.body.get("model"))
        if isinstance(reply, ChatResult):
            return json_response(render_message(reply.body, model), headers=ctx.response_headers)
        assert not isinstance(reply, EmbeddingResult)
        encoder = AnthropicStreamEncoder(model, "msg_" + ctx.request_id.removeprefix("req_"))
        return StreamingResponse(
            _anthropic_sse(ctx, reply, encoder),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **ctx.response_headers},
        )

    async def _authenticated(self, request: Request) -> tuple[Services, Principal]:
        services = self.services
        identity = identity_of(request, services.tenancy.client_address)
        return services, await services.tenancy.authenticate.principal(identity, "models")

    async def list_models(self, request: Request) -> Response:
        """GET /v1/models: the public models that can answer now, as far as the key may use."""
        try:
            services, principal = await self._authenticated(request)
        except SeawallError as exc:
            return openai_error(exc)
        allowed = principal.models
        data = [
            _model_object(m.name, m.owned_by)
            for m in services.models.serving()
            if allowed is None or m.name in allowed
        ]
        return json_response({"object": "list", "data": data})

    async def retrieve_model(self, request: Request) -> Response:
        """GET /v1/models/{model}."""
        name = request.path_params["model"]
        try:
            services, principal = await self._authenticated(request)
            model = services.models.models.get(name)
            hidden = principal.models is not None and name not in principal.models
            if model is None or hidden or not services.models.usable.get(name):
                raise ModelNotFound(
                    f"The model '{name}' does not exist on this Seawall.", param="model"
                )
        except SeawallError as exc:
            return openai_error(exc)
        return json_response(_model_object(model.name, model.owned_by))


def _model_object(name: str, owned_by: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": _MODEL_CREATED, "owned_by": owned_by}


async def _relay(
    ctx: RequestContext,
    stream: ChatStream,
    encode: Callable[[dict[str, object]], bytes],
    encode_error: Callable[[SeawallError], bytes],
) -> AsyncIterator[bytes]:
    """Relay chunks as they come; a failure after the first byte ends with an error event."""
    try:
        async for chunk in stream:
            yield encode(chunk)
    except Exception as exc:
        yield encode_error(as_seawall_error(exc, ctx.request_id))
        raise _StreamFailed from None
    finally:
        await stream.aclose()


class _StreamFailed(Exception):
    """Marks a relay that already told the client about its failure."""


async def _openai_sse(ctx: RequestContext, stream: ChatStream) -> AsyncIterator[bytes]:
    try:
        async for event in _relay(
            ctx,
            stream,
            lambda chunk: b"data: " + orjson.dumps(chunk) + b"\n\n",
            lambda error: b"data: " + orjson.dumps(error.openai_body()) + b"\n\n",
        ):
            yield event
    except _StreamFailed:
        return  # no [DONE]: the client must not mistake a broken stream for a finished one
    yield b"data: [DONE]\n\n"


async def _anthropic_sse(
    ctx: RequestContext, stream: ChatStream, encoder: AnthropicStreamEncoder
) -> AsyncIterator[bytes]:
    yield encoder.start()
    try:
        async for event in _relay(ctx, stream, encoder.feed, encoder.error):
            if event:
                yield event
    except _StreamFailed:
        return
    usage = stream.usage
    yield encoder.finish(usage.prompt_tokens, usage.completion_tokens)
