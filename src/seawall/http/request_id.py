"""Pure-ASGI middleware: a server-generated ``x-request-id`` on every response."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seawall.monitoring.json_logs import CURRENT_REQUEST_ID
from seawall.pipeline.context import new_request_id

SCOPE_KEY = "seawall.request_id"


class RequestIdMiddleware:
    """Generates the request id before anything else runs and stamps it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope[SCOPE_KEY] = request_id
        # Every line logged while handling this request carries its id.
        CURRENT_REQUEST_ID.set(request_id)
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Replace, never append: a client-sent id must not be echoed as ours.
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
