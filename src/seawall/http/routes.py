"""Paths to handlers, and nothing else."""

from __future__ import annotations

from starlette.routing import Route

from seawall.control.admin_routes import admin_routes
from seawall.http.gateway import Gateway
from seawall.http.health import Readiness, live


def routes(gateway: Gateway) -> list[Route]:
    """Every path Seawall serves."""
    return [
        Route("/v1/chat/completions", gateway.chat_completions, methods=["POST"]),
        Route("/v1/embeddings", gateway.embeddings, methods=["POST"]),
        Route("/v1/messages", gateway.messages, methods=["POST"]),
        Route("/v1/models", gateway.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", gateway.retrieve_model, methods=["GET"]),
        Route("/health/live", live, methods=["GET"]),
        Route("/health/ready", Readiness(gateway).ready, methods=["GET"]),
        *admin_routes(lambda: gateway.services),
    ]
