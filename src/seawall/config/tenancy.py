"""Tenancy settings: key tiers, client limits, budgets' failure mode, trusted proxies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from seawall.tenancy.budgets import Period
from seawall.tenancy.client_limits import ClientLimits

# What a key may be scoped to; each names one route of the serving API.
Endpoint = Literal["chat.completions", "embeddings", "messages", "models"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat.completions", "embeddings", "messages", "models")


@dataclass(frozen=True, slots=True)
class TierBudget:
    """The budget every key of a tier gets, unless a budget rule names the key."""

    period: Period = "daily"
    soft_usd: float | None = None
    hard_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    """Defaults for every key of a tier; a key's own values win.

    ``models`` and ``endpoints`` of None allow everything; ``rpm``/``tpm`` of None set
    no per-key limit.
    """

    name: str
    admin: bool = False
    models: tuple[str, ...] | None = None
    endpoints: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget: TierBudget | None = None
    # The prompt template the tier's requests use, once templates exist.
    prompt_template: str | None = None


def default_tiers() -> dict[str, Tier]:
    """admin (may use the admin API), verified (no limits) and guest (small limits)."""
    return {
        "admin": Tier("admin", admin=True),
        "verified": Tier("verified"),
        "guest": Tier(
            "guest",
            rpm=20,
            tpm=40_000,
            endpoints=("chat.completions", "messages", "models"),
            budget=TierBudget("daily", soft_usd=0.8, hard_usd=1.0),
        ),
    }


@dataclass(frozen=True, slots=True)
class TenancySettings:
    """How keys are verified and what limits and budgets apply."""

    tiers: dict[str, Tier] = field(default_factory=default_tiers)
    # The tier of keys created without one.
    default_tier: str = "verified"
    # How long a verified key is trusted before the database is asked again: the time a
    # revocation takes to reach every instance.
    key_cache_seconds: float = 5.0
    # Peers whose X-Forwarded-For is believed (addresses or CIDR networks).
    trusted_proxies: tuple[str, ...] = ()
    # Failed authentications per client IP and minute before that IP gets 429s.
    auth_failures_per_minute: int = 20
    # Limits per end user (per tenant) and per client IP.
    user_limits: ClientLimits = field(default_factory=ClientLimits)
    ip_limits: ClientLimits = field(default_factory=ClientLimits)
    # Hard budgets refuse with 503 while Redis is down, unless this is set: then each
    # instance counts alone, starting from the ledger's figures.
    budgets_fail_open: bool = False
    # POSTed a JSON body when spend crosses a soft budget.
    budget_alert_webhook: str | None = None
    # How often budget rules are re-read from the database.
    budget_rules_refresh_seconds: float = 5.0
