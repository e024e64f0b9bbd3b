"""The ASGI application: routes, middleware, error pages and the lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from seawall.config.schema import Settings
from seawall.errors import MethodNotAllowed, NotFound, SeawallError
from seawall.http.drain import Drain
from seawall.http.gateway import Gateway
from seawall.http.request_id import RequestIdMiddleware
from seawall.http.responses import anthropic_error, openai_error
from seawall.http.routes import routes, serving_endpoints
from seawall.http.serving_app import ServingApp
from seawall.services import start_services


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 in the wire format the path implies."""
    assert isinstance(exc, HTTPException)
    error: SeawallError
    if exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 404:
        error = NotFound(
            f"Unknown path {request.url.path}. Seawall serves /v1/chat/completions, "
            "/v1/embeddings, /v1/models, /v1/messages, /v1/feedback, /health/*, /metrics, "
            "the admin API (/admin/*) and its dashboard (/dashboard)."
        )
    else:
        error = SeawallError(str(exc.detail))
    if request.url.path.startswith("/v1/messages"):
        return anthropic_error(error)
    return openai_error(error)


def freeze_startup_objects() -> None:
    """Exclude everything built at start-up from the cyclic garbage collector's scans.

    The modules, services and pools live as long as the process, yet every full
    collection walked them all (over 100,000 objects): tens of milliseconds, about
    twice a second under load, which stalled requests and cost about a sixth of the
    CPU. Frozen, full collections walk only per-request objects. Garbage left from
    start-up is collected first, so none of it is frozen for good.
    """
    gc.collect()
    gc.freeze()


def build_app(
    settings: Settings, master_key: str, *, migrate: bool = True, serving_process: bool = False
) -> ServingApp:
    """A Seawall app that opens its services on start-up and closes them on shutdown.

    ``serving_process``: the app runs in a process of ``seawall serve``, which it has to
    itself; it freezes its start-up heap (``freeze_startup_objects``) and drains on
    SIGTERM (``http.drain``).
    """
    gateway = Gateway()
    drain = Drain(settings.server.drain_seconds, settings.server.grace_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await start_services(settings, master_key, migrate=migrate)
        gateway.attach(services)
        if serving_process:
            freeze_startup_objects()
            drain.install(asyncio.get_running_loop(), services.stopping)
        try:
            yield
        finally:
            gateway.attach(None)
            await services.aclose()
            drain.report_stopped()

    serving = serving_endpoints(gateway)
    app = Starlette(
        routes=routes(gateway, serving, drain),
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={404: _http_error, 405: _http_error},
        lifespan=lifespan,
    )
    return ServingApp(app, serving, drain)
