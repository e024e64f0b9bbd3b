"""GET /metrics: the Prometheus text exposition of this server (every worker's, summed)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

# Where worker processes keep their values (set by ``seawall serve`` with --workers > 1).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


async def metrics(request: Request) -> Response:
    """The current values, for a Prometheus scrape (no key: keep the port private)."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
