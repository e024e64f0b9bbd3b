"""POST /v1/feedback: an end user's verdict on one answer, tied to its request record.

The app sends it with its own key: ``{"request_id": "req_...", "thumbs": "up" | "down"}``
or ``{"request_id": ..., "score": 0.0 to 1.0}``, with an optional ``comment``. The
request id is Seawall's own (the ``x-request-id`` of the answer). Feedback is accepted
only for a request of the key's own tenant (any other id is a 404, so ids of other
tenants cannot be probed), stored once per request (sending again replaces it) and
reported per model and deployment (``seawall usage feedback``).

A request is recorded within ``stores.record_flush_seconds`` of its answer; feedback
sent sooner than that waits for the record, once, before it is refused.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seawall.errors import InvalidRequest, NotFound
from seawall.http.body import read_body
from seawall.http.gateway import Gateway
from seawall.http.identity import identity_of
from seawall.http.request_id import SCOPE_KEY
from seawall.http.responses import as_seawall_error, json_response, openai_error
from seawall.inbound.json_body import parse_object
from seawall.stores.feedback import Feedback

MAX_COMMENT_CHARS = 2000
_FIELDS = frozenset({"request_id", "thumbs", "score", "comment"})
# Past the record writer's flush interval, a little slack before a request id is unknown.
_RECORD_SLACK_S = 0.5


class FeedbackApi:
    """The feedback endpoint of one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def post(self, request: Request) -> Response:
        """POST /v1/feedback."""
        try:
            services = self._gateway.services
            identity = identity_of(request, services.tenancy.client_address)
            principal = await services.tenancy.authenticate.principal(identity, "feedback")
            limit = services.settings.server.max_body_bytes
            body = parse_object(await read_body(request.headers, request.receive, limit))
            request_id, score, thumbs, comment = parse_feedback(body)
            store = services.feedback
            rated = await store.owner(request_id)
            if rated is None:
                await asyncio.sleep(services.settings.stores.record_flush_seconds + _RECORD_SLACK_S)
                rated = await store.owner(request_id)
            if rated is None or rated.tenant_id != principal.tenant_id:
                raise NotFound(
                    f"No request {request_id!r} of this key's tenant is recorded; send the "
                    "x-request-id Seawall returned with the answer.",
                    param="request_id",
                )
            given = Feedback(request_id, rated.tenant_id, principal.key_id, score, thumbs, comment)
            stored = await store.put(given)
            services.feedback_metrics.observe(rated, stored)
        except Exception as exc:
            return openai_error(as_seawall_error(exc, request.scope[SCOPE_KEY]))
        return json_response(feedback_json(stored))


def parse_feedback(body: dict[str, Any]) -> tuple[str, float, str | None, str | None]:
    """(request id, score, thumbs, comment) from the body, or a 400 saying what is wrong."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(_FIELDS)}.")
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id.startswith("req_"):
        raise InvalidRequest(
            "request_id must be the x-request-id Seawall returned (it starts with 'req_').",
            param="request_id",
        )
    thumbs, score = body.get("thumbs"), body.get("score")
    if (thumbs is None) == (score is None):
        raise InvalidRequest("Send either thumbs ('up' or 'down') or score (0 to 1).")
    if thumbs is not None:
        if thumbs not in ("up", "down"):
            raise InvalidRequest("thumbs must be 'up' or 'down'.", param="thumbs")
        score = 1.0 if thumbs == "up" else 0.0
    elif (
        isinstance(score, bool)
        or not isinstance(score, int | float)
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        raise InvalidRequest("score must be a number from 0 (bad) to 1 (good).", param="score")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS):
        raise InvalidRequest(
            f"comment must be a string of at most {MAX_COMMENT_CHARS} characters.",
            param="comment",
        )
    return request_id, float(score), thumbs, comment


def feedback_json(stored: Feedback) -> dict[str, Any]:
    """How feedback reads in the API."""
    return {
        "object": "feedback",
        "request_id": stored.request_id,
        "score": stored.score,
        "thumbs": stored.thumbs,
        "comment": stored.comment,
        "created_at": stored.created_at,
    }
