"""Paths to handlers, and nothing else."""

from __future__ import annotations

from starlette.routing import Route

from seawall.control.admin_routes import admin_routes
from seawall.control.dashboard import Dashboard
from seawall.http.drain import Drain
from seawall.http.feedback import FeedbackApi
from seawall.http.gateway import Gateway
from seawall.http.health import Readiness, live
from seawall.http.serving_app import ServingEndpoint
from seawall.monitoring.endpoint import MetricsEndpoint


def serving_endpoints(gateway: Gateway) -> dict[str, ServingEndpoint]:
    """The POST paths that serve model calls: the hot path (see ``serving_app``)."""
    return {
        "/v1/chat/completions": ServingEndpoint(gateway.chat_completions),
        "/v1/embeddings": ServingEndpoint(gateway.embeddings),
        "/v1/messages": ServingEndpoint(gateway.messages),
    }


def routes(gateway: Gateway, serving: dict[str, ServingEndpoint], drain: Drain) -> list[Route]:
    """Every path Seawall serves; ``serving`` are mounted here too, for 405 and redirects."""
    return [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in serving.items()),
        Route("/v1/models", gateway.list_models, methods=["GET"]),
        Route("/v1/feedback", FeedbackApi(gateway).post, methods=["POST"]),
        Route("/v1/models/{model:path}", gateway.retrieve_model, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/metrics", MetricsEndpoint(gateway).metrics, methods=["GET"]),
        Route("/health/ready", Readiness(gateway, drain).ready, methods=["GET"]),
        *admin_routes(lambda: gateway.services),
        Route("/dashboard", Dashboard().page, methods=["GET"]),
    ]
