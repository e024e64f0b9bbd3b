"""GET /metrics: the Prometheus text exposition of this server (every worker's, summed)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from seawall.http.gateway import Gateway

# Where worker processes keep their values (set by ``seawall serve`` with --workers > 1).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class MetricsEndpoint:
    """The current values, for a Prometheus scrape (no key: keep the port private)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def metrics(self, request: Request) -> Response:
        """This worker's requests counted up to now; other workers' as of their last flush."""
        services = self._gateway.current
        if services is not None and services.monitoring is not None:
            services.monitoring.flush_metrics()
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
