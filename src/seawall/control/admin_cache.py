"""Admin API: the response cache's counters, and invalidation by tenant, model and age."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request

from seawall.cache.invalidation import Invalidation
from seawall.control.admin_api import json_body
from seawall.errors import InvalidRequest, ServiceUnavailable
from seawall.services import Services

# The counters GET /admin/cache shows: requests by cache result, and answers kept.
COUNTS = ("hit-exact", "hit-semantic", "miss", "bypass", "stored")


async def cache_status(request: Request, services: Services) -> Any:
    """GET /admin/cache: this worker's cache counters and where entries are kept."""
    cache = services.cache
    if cache is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "backend": "redis" if services.redis is not None else "memory",
        "ttl_seconds": services.settings.cache.ttl_seconds,
        "semantic": cache.semantic is not None,
        "counts": {name: cache.counts[name] for name in COUNTS},
    }


async def invalidate(request: Request, services: Services) -> Any:
    """POST /admin/cache/invalidate {"tenant", "model", "older_than_seconds"}, each optional.

    Entries of the tenant and model (any, when left out) stored more than
    ``older_than_seconds`` ago (0: all of them) stop answering: at once on this
    instance, within ``cache.invalidation_refresh_seconds`` on every other.
    """
    if services.cache is None or services.invalidations is None:
        raise ServiceUnavailable("Response caching is off (cache.enabled: false).")
    body = await json_body(request, services)
    known = {"tenant", "model", "older_than_seconds"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(known)}.")
    for name in ("tenant", "model"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a string.", param=name)
    older_than = body.get("older_than_seconds", 0)
    if (
        isinstance(older_than, bool)
        or not isinstance(older_than, int | float)
        or not math.isfinite(older_than)
        or older_than < 0
    ):
        raise InvalidRequest(
            "older_than_seconds must be a number of seconds >= 0.", param="older_than_seconds"
        )
    made = await services.invalidations.add(
        tenant=body.get("tenant"), model=body.get("model"), older_than_s=float(older_than)
    )
    services.cache.invalidations.add(made)
    return invalidation_json(made)


def invalidation_json(made: Invalidation) -> dict[str, Any]:
    """How an invalidation reads in the admin API and the CLI."""
    return {
        "id": made.invalidation_id,
        "tenant": made.tenant,
        "model": made.model,
        "stored_before": made.stored_before,
        "created_at": made.created_at,
    }
