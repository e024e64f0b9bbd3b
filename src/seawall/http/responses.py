"""Responses in the client's wire format: JSON bodies, errors and SSE streams."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from seawall.errors import SeawallError

logger = logging.getLogger("seawall.http")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised once with orjson."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def as_seawall_error(error: Exception, request_id: str) -> SeawallError:
    """Any exception as a client-visible error; unexpected ones are logged with their trace."""
    if isinstance(error, SeawallError):
        return error
    logger.error("unexpected error in request %s", request_id, exc_info=error)
    return SeawallError(
        f"Seawall failed unexpectedly while handling this request ({request_id}); "
        "the error is logged under that id."
    )


def openai_error(error: SeawallError) -> Response:
    """An OpenAI-shaped error response."""
    return json_response(error.openai_body(), error.status, error.headers())


def anthropic_error(error: SeawallError) -> Response:
    """An Anthropic-shaped error response."""
    return json_response(error.anthropic_body(), error.status, error.headers())
