"""Seawall's ASGI entry point: the serving endpoints straight, everything else through Starlette.

A chat completion is the request Seawall exists for, and Starlette's layers around
it (error and exception middleware, the request-id middleware, the router, the
request and response objects and the send wrappers each layer adds) cost about a
tenth of its CPU (docs/performance.md). ``ServingApp`` hands a POST to one of the
serving paths straight to its ``ServingEndpoint``; any other request, and a serving
path with any other method (405), goes through the Starlette app, where the same
endpoints are mounted as routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from seawall.http.drain import Drain
from seawall.http.incoming import Incoming
from seawall.http.request_id import SCOPE_KEY
from seawall.http.responses import as_seawall_error, openai_error
from seawall.monitoring.json_logs import CURRENT_REQUEST_ID
from seawall.pipeline.context import new_request_id

Handler = Callable[[Incoming], Awaitable[Response]]


class ServingEndpoint:
    """One serving route as an ASGI app; stamps ``x-request-id`` on its response itself.

    A handler answers its own errors in its client's format; anything that still
    escapes it (a bug) is logged under the request id and answered with an
    OpenAI-shaped 500 that carries the id, never the server's bare 500.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Set by RequestIdMiddleware when the request came through Starlette.
        request_id = scope.get(SCOPE_KEY)
        if request_id is None:
            request_id = scope[SCOPE_KEY] = new_request_id()
            # Every line logged while handling this request carries its id.
            CURRENT_REQUEST_ID.set(request_id)
        try:
            response = await self._handler(Incoming.of(scope, receive, request_id))
        except Exception as exc:
            response = openai_error(as_seawall_error(exc, request_id))
        response.raw_headers.append((b"x-request-id", request_id.encode()))
        if isinstance(response, StreamingResponse):
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class ServingApp:
    """POSTs to a serving path go to their endpoint; everything else to ``app``.

    Each serving request's task is in ``drain.requests`` while it runs, so that a
    shutdown knows what it waits for and what it cuts.
    """

    def __init__(
        self, app: ASGIApp, endpoints: Mapping[str, ServingEndpoint], drain: Drain
    ) -> None:
        self.app = app
        self._endpoints = dict(endpoints)
        self._drain = drain
        self._requests = drain.requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                task = asyncio.current_task()
                assert task is not None
                self._requests.add(task)
                try:
                    await endpoint(scope, receive, send)
                except asyncio.CancelledError:
                    # A stream cut at the end of a shutdown's grace period: recorded
                    # already, and its client sees the stream break. Not an error trace.
                    if not self._drain.cutting or task.uncancel() > 0:
                        raise
                finally:
                    self._requests.discard(task)
                return
        await self.app(scope, receive, send)
