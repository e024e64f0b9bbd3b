"""Admin API: the guard's detection log, its review queue and per-user strikes.

Reviewers list the requests the guard held (``?tenant=`` shows one tenant's only) and
approve or reject them; a decision updates the sender's strikes (see
``guard.review_queue``). A decision may name a ``tenant`` too: then an item of any
other tenant is "not found", so a tenant's reviewer cannot decide another's items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from seawall.control.admin_api import json_body
from seawall.control.report_filters import instant_param, limit_param
from seawall.errors import InvalidRequest, NotFound
from seawall.guard.detection_log import MAX_LIST, DetectionFilter, detection_json
from seawall.guard.review_queue import (
    ReviewAlreadyDecided,
    ReviewDecision,
    ReviewNotFound,
    review_json,
)
from seawall.guard.strikes import StrikeState
from seawall.services import Services

DETECTION_PARAMETERS = frozenset({"tenant", "user", "rule", "since", "until", "limit"})
REVIEW_PARAMETERS = frozenset({"tenant", "limit"})
DECISION_FIELDS = frozenset({"note", "reviewer", "tenant"})
# Who decided, when the request does not say.
DEFAULT_REVIEWER = "admin"
# Rows listed when the request does not say.
_DEFAULT_LIMIT = 100


async def list_detections(request: Request, services: Services) -> Any:
    """GET /admin/guard/detections?tenant=&user=&rule=&since=&until=&limit=, newest first."""
    params = _known(request.query_params, DETECTION_PARAMETERS)
    where = DetectionFilter(
        tenant_id=params.get("tenant") or None,
        user=params.get("user") or None,
        rule=params.get("rule") or None,
        since=instant_param("since", params.get("since")),
        until=instant_param("until", params.get("until")),
        limit=_limit(params),
    )
    events = await services.guard.detections.find(where)
    return {"object": "list", "data": [detection_json(event) for event in events]}


async def list_reviews(request: Request, services: Services) -> Any:
    """GET /admin/guard/reviews?tenant=&limit=: pending items, oldest first."""
    params = _known(request.query_params, REVIEW_PARAMETERS)
    items = await services.guard.reviews.pending(params.get("tenant") or None, _limit(params))
    return {"object": "list", "data": [review_json(item) for item in items]}


async def approve_review(request: Request, services: Services) -> Any:
    """POST /admin/guard/reviews/{review_id}/approve {"note", "reviewer", "tenant"}."""
    return await _decide(request, services, approve=True)


async def reject_review(request: Request, services: Services) -> Any:
    """POST /admin/guard/reviews/{review_id}/reject {"note", "reviewer", "tenant"}."""
    return await _decide(request, services, approve=False)


async def get_strikes(request: Request, services: Services) -> Any:
    """GET /admin/guard/strikes/{tenant}/{user}: where an end user stands."""
    tenant, user = request.path_params["tenant"], request.path_params["user"]
    return {
        "tenant": tenant,
        "user": user,
        **strikes_json(await services.guard.strikes.state(tenant, user)),
    }


def strikes_json(state: StrikeState) -> dict[str, Any]:
    """How a user's strikes read in the admin API and the CLI."""
    return {
        "strikes": state.strikes,
        "blocks": state.blocks,
        "blocked": state.blocked,
        "blocked_until": state.blocked_until,
        "retry_after": state.retry_after,
    }


def decision_json(decision: ReviewDecision) -> dict[str, Any]:
    """A decided item, with its user's strikes after the decision (None: no user)."""
    strikes = None if decision.strikes is None else strikes_json(decision.strikes)
    return {**review_json(decision.item), "strikes": strikes}


async def _decide(request: Request, services: Services, *, approve: bool) -> Any:
    body = await json_body(request, services)
    unknown = sorted(set(body) - DECISION_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(DECISION_FIELDS)}.")
    for name in DECISION_FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a string.", param=name)
    review_id = request.path_params["review_id"]
    reviews = services.guard.reviews
    decide = reviews.approve if approve else reviews.reject
    try:
        decision = await decide(
            review_id,
            body.get("reviewer") or DEFAULT_REVIEWER,
            body.get("note"),
            tenant=body.get("tenant"),
        )
    except ReviewNotFound:
        raise NotFound(
            f"No held request has the review id {review_id!r}; "
            "list them with GET /admin/guard/reviews."
        ) from None
    except ReviewAlreadyDecided as exc:
        raise InvalidRequest(
            f"Review {review_id} was already {exc.item.status} by {exc.item.reviewer}.",
            code="review_already_decided",
        ) from None
    return decision_json(decision)


def _known(params: Mapping[str, str], known: frozenset[str]) -> Mapping[str, str]:
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidRequest(
            f"unknown parameter {unknown[0]!r}; expected one of {sorted(known)}",
            param=unknown[0],
        )
    return params


def _limit(params: Mapping[str, str]) -> int:
    return limit_param(params.get("limit"), MAX_LIST) or _DEFAULT_LIMIT
