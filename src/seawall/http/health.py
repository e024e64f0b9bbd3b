"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import Response

from seawall.http.drain import Drain
from seawall.http.gateway import Gateway
from seawall.http.responses import json_response
from seawall.stores.database import ping as ping_database

_PROBE_TIMEOUT = 2.0


async def live(request: Request) -> Response:
    """GET /health/live: the process is up and its event loop turns."""
    return json_response({"status": "ok"})


class Readiness:
    """GET /health/ready: stores reachable and at least one deployment usable, not draining."""

    def __init__(self, gateway: Gateway, drain: Drain) -> None:
        self._gateway = gateway
        self._drain = drain

    async def ready(self, request: Request) -> Response:
        """Probe each dependency; 200 only when all are fine."""
        if self._drain.draining:
            return json_response({"status": "draining", "checks": {}}, 503)
        services = self._gateway.current
        if services is None:
            return json_response({"status": "starting", "checks": {}}, 503)
        checks = {"database": await _probe(ping_database(services.engine))}
        if services.redis is not None:
            checks["redis"] = await _probe(services.redis.ping())
        serving = services.models.serving()
        checks["deployments"] = f"ok ({len(serving)} models)" if serving else "none usable"
        is_ready = all(value.startswith("ok") for value in checks.values())
        return json_response(
            {"status": "ready" if is_ready else "not ready", "checks": checks},
            200 if is_ready else 503,
        )


async def _probe(check: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            await check
    except Exception as exc:
        return f"failed: {exc.__class__.__name__}: {exc}"[:200]
    return "ok"
