"""Key creation requests from the admin API's JSON or the CLI's flags, validated once."""

from __future__ import annotations

import re
from typing import Any

from seawall.config.tenancy import ENDPOINTS, Tier
from seawall.errors import InvalidRequest
from seawall.inbound.json_body import type_name
from seawall.tenancy.keys import ApiKey, KeyRequest

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "15m", "12h", "30d" or "2w"; raises ``ValueError``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 3600, 15m, 12h or 30d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def key_request(
    body: dict[str, Any], tiers: dict[str, Tier], default_tier: str, now: float
) -> KeyRequest:
    """A ``KeyRequest`` from a JSON object; ``InvalidRequest`` names the bad field."""
    known = {
        "tenant", "name", "tier", "user", "models", "endpoints", "rpm", "tpm", "expires_in",
        "expires_at",
    }  # fmt: skip
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidRequest(f"Unknown field(s) {unknown}; expected {sorted(known)}.")
    tier = _text(body, "tier") or default_tier
    if tier not in tiers:
        raise InvalidRequest(
            f"Unknown tier {tier!r}; expected one of {sorted(tiers)}.", param="tier"
        )
    expires_at = _number(body, "expires_at")
    expires_in = body.get("expires_in")
    if expires_in is not None:
        if expires_at is not None:
            raise InvalidRequest("Send expires_in or expires_at, not both.", param="expires_in")
        try:
            seconds = parse_duration(str(expires_in))
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="expires_in") from None
        expires_at = now + seconds
    endpoints = _names(body, "endpoints")
    for endpoint in endpoints or ():
        if endpoint not in ENDPOINTS:
            raise InvalidRequest(
                f"Unknown endpoint {endpoint!r}; expected some of {list(ENDPOINTS)}.",
                param="endpoints",
            )
    rpm, tpm = _number(body, "rpm"), _number(body, "tpm")
    return KeyRequest(
        tenant=_text(body, "tenant") or "default",
        name=_text(body, "name") or "",
        tier=tier,
        user=_text(body, "user"),
        models=_names(body, "models"),
        endpoints=endpoints,
        rpm=None if rpm is None else int(rpm),
        tpm=None if tpm is None else int(tpm),
        expires_at=expires_at,
    )


def key_json(key: ApiKey, now: float) -> dict[str, Any]:
    """How a key reads in the admin API and the CLI (never with its secret)."""
    return {
        "id": key.key_id,
        "prefix": key.prefix,
        "name": key.name,
        "tenant": key.tenant_id,
        "tier": key.tier,
        "user": key.user,
        "models": None if key.models is None else list(key.models),
        "endpoints": None if key.endpoints is None else list(key.endpoints),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "replaced_by": key.replaced_by,
        "state": key.state(now),
    }


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string, not {type_name(value)}.", param=name)
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidRequest(f"{name} must be a non-negative number.", param=name)
    return float(value)


def _names(body: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{name} must be a list of strings.", param=name)
    return tuple(value)
