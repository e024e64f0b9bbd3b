"""Reading the ``tenancy:`` section: tiers, limits, budgets and trusted proxies."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, get_args

from seawall.config.tenancy import (
    ENDPOINTS,
    TenancySettings,
    Tier,
    TierBudget,
    default_tiers,
)
from seawall.tenancy.budgets import Period
from seawall.tenancy.client_limits import ClientLimits

if TYPE_CHECKING:
    from seawall.config.load import _Reader

_PERIODS: tuple[str, ...] = get_args(Period)
_SCALARS = (
    "default_tier",
    "key_cache_seconds",
    "auth_failures_per_minute",
    "budgets_fail_open",
    "budget_alert_webhook",
    "budget_rules_refresh_seconds",
)


def read_tenancy(reader: _Reader, raw: Any, models: set[str]) -> TenancySettings:
    """The tenancy settings; problems are reported through ``reader``."""
    spec = dict(reader.section("tenancy", raw))
    kwargs: dict[str, Any] = {}
    for name in ("user_limits", "ip_limits"):
        if name in spec:
            limits = reader.build(f"tenancy.{name}", ClientLimits, spec.pop(name))
            if limits is not None:
                kwargs[name] = limits
    if "trusted_proxies" in spec:
        kwargs["trusted_proxies"] = _networks(reader, spec.pop("trusted_proxies"))
    tiers = default_tiers()
    for name, tier_raw in reader.section("tenancy.tiers", spec.pop("tiers", None)).items():
        tier = _tier(reader, f"tenancy.tiers.{name}", str(name), tier_raw, models)
        if tier is not None:
            tiers[str(name)] = tier
    unknown = set(spec) - set(_SCALARS)
    for name in sorted(unknown):
        reader.problem(f"tenancy.{name}", "unknown key")
        spec.pop(name)
    kwargs.update(reader.dataclass_fields("tenancy", spec, TenancySettings))
    settings = TenancySettings(tiers=tiers, **kwargs)
    if settings.default_tier not in tiers:
        reader.problem("tenancy.default_tier", f"unknown tier; expected one of {sorted(tiers)}")
    webhook = settings.budget_alert_webhook
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        reader.problem("tenancy.budget_alert_webhook", "must be an http:// or https:// URL")
    return settings


def _tier(reader: _Reader, key: str, name: str, raw: Any, models: set[str]) -> Tier | None:
    spec = dict(reader.section(key, raw))
    lists: dict[str, tuple[str, ...] | None] = {}
    for field_name in ("models", "endpoints"):
        if field_name in spec:
            lists[field_name] = _names(reader, f"{key}.{field_name}", spec.pop(field_name))
    for model in lists.get("models") or ():
        if model not in models:
            reader.problem(f"{key}.models", f"unknown model {model!r}; define it under models")
    for endpoint in lists.get("endpoints") or ():
        if endpoint not in ENDPOINTS:
            reader.problem(f"{key}.endpoints", f"unknown endpoint {endpoint!r}; use {ENDPOINTS}")
    budget = None
    if "budget" in spec:
        budget = reader.build(f"{key}.budget", TierBudget, spec.pop("budget"))
        if budget is not None and budget.period not in _PERIODS:
            reader.problem(f"{key}.budget.period", f"must be one of {list(_PERIODS)}")
    defaults = default_tiers().get(name)
    base = {"admin": defaults.admin} if defaults is not None else {}
    fields = {**base, **reader.dataclass_fields(key, spec, Tier), **lists}
    fields.pop("name", None)
    return Tier(name=name, budget=budget, **fields)


def _names(reader: _Reader, key: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        reader.problem(key, "must be a list of names")
        return None
    return tuple(value)


def _networks(reader: _Reader, value: Any) -> tuple[str, ...]:
    names = _names(reader, "tenancy.trusted_proxies", value) or ()
    for name in names:
        try:
            ipaddress.ip_network(name, strict=False)
        except ValueError:
            reader.problem("tenancy.trusted_proxies", f"{name!r} is not an address or network")
    return names
