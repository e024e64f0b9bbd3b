"""Tenancy on for the overhead benchmark: a key with limits, user and IP limits, a budget.

Everything a request pays for when tenancy is in use, shared through the local Redis:
a stored key (verified from the per-instance cache), the key's, the user's and the
IP's request and token limits (one Lua call), and a tenant budget reserved before and
settled after each request (two Lua calls). The limits and the budget are far above
what the benchmark sends, so every request is served and the figures show the cost.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

REDIS_URL = "redis://127.0.0.1:6379/0"
TENANCY_METHOD = (
    "tenancy on: Redis-backed stores, a stored API key with rpm/tpm limits, per-user and "
    "per-IP limits (the body names a user), and a daily tenant budget (reserve + settle "
    "per request); limits and budget far above the load"
)


def enable_tenancy(config: Path) -> None:
    """Add Redis and user/IP limits to a Seawall configuration file written for the bench."""
    text = config.read_text()
    text += (
        "tenancy:\n"
        "  user_limits: {rpm: 10000000, tpm: 10000000000}\n"
        "  ip_limits: {rpm: 10000000, tpm: 10000000000}\n"
    )
    if "stores:" in text:
        raise ValueError("the bench configuration already has a stores section")
    config.write_text(text + f"stores: {{redis_url: {REDIS_URL}}}\n")


def provision(base: str, master_key: str) -> str:
    """Create a tenant's key and budget through the admin API; the key's secret."""
    tenant = f"bench-{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {master_key}"}
    with httpx.Client(base_url=base, headers=admin, timeout=10) as client:
        key = client.post(
            "/admin/keys",
            json={"tenant": tenant, "name": "overhead bench", "rpm": 10_000_000, "tpm": 10**10},
        )
        key.raise_for_status()
        budget = client.post(
            "/admin/budgets",
            json={"scope": "tenant", "subject": tenant, "period": "daily", "hard_usd": 1e9},
        )
        budget.raise_for_status()
    secret: str = key.json()["key"]
    return secret
