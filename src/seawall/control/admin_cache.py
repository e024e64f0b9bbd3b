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


# The most entries one warm call replays.
MAX_WARM = 10_000


async def warm(request: Request, services: Services) -> Any:
    """POST /admin/cache/warm {"from_model", "to_model", "top", "mode"}.

    ``mode`` "replay" (the default) asks ``to_model`` the ``top`` most requested
    questions of ``from_model`` and keeps its answers; "copy" copies the entries as
    they are, for a model that answers as ``from_model`` does.
    """
    cache, pipeline = services.cache, services.warm
    if cache is None or pipeline is None:
        raise ServiceUnavailable("Response caching is off (cache.enabled: false).")
    body = await json_body(request, services)
    known = {"from_model", "to_model", "top", "mode"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(known)}.")
    source, target = body.get("from_model"), body.get("to_model")
    for name, value in (("from_model", source), ("to_model", target)):
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"{name} must be a public model name.", param=name)
    model = services.models.models.get(str(target))
    if model is None or model.operation != "chat":
        raise InvalidRequest(
            f"to_model {target!r} is not a chat model this Seawall serves.", param="to_model"
        )
    top = body.get("top", 100)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_WARM:
        raise InvalidRequest(f"top must be a whole number from 1 to {MAX_WARM}.", param="top")
    mode = body.get("mode", "replay")
    if mode not in ("replay", "copy"):
        raise InvalidRequest("mode must be 'replay' or 'copy'.", param="mode")
    answer = pipeline.run if mode == "replay" else None
    result = await cache.warm(str(source), str(target), top, answer)
    return {"from_model": source, "to_model": target, "mode": mode, **result}
