"""The tenancy parts of a running gateway, built once at start-up.

Keys and their verifier, the client rate limits, budgets with their rules and
alerts: each shared through Redis when one is configured, in process memory
otherwise. ``start`` loads the budget rules before traffic; ``aclose`` settles what
is in flight and stops background work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.config.schema import Settings
from seawall.pipeline.authenticate import Authenticate
from seawall.pipeline.budget import Budget
from seawall.pipeline.limit import ClientRateLimit
from seawall.pipeline.rejections import RejectionLog
from seawall.pipeline.route import ModelTable
from seawall.resilience.clock import Clock
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.auth_failures import auth_failure_limiter
from seawall.tenancy.budget_alerts import SoftLimitAlerts
from seawall.tenancy.budget_ledger import SqlLedgerSpend
from seawall.tenancy.budget_redis import RedisBudgetStore
from seawall.tenancy.budget_rules import CachedBudgetRules, SqlBudgetRules
from seawall.tenancy.budgets import BudgetStore, BudgetTemplate, MemoryBudgetStore
from seawall.tenancy.client_ip import ClientAddress
from seawall.tenancy.client_limits_redis import client_limit_store
from seawall.tenancy.cost_estimate import CostEstimate
from seawall.tenancy.costs import PriceBook
from seawall.tenancy.key_store import SqlKeyStore
from seawall.tenancy.key_verifier import KeyVerifier
from seawall.tenancy.limit_policy import LimitPolicy
from seawall.tokens import TokenCounter


@dataclass(slots=True)
class Tenancy:
    """Who may call, how often and for how much."""

    keys: SqlKeyStore
    authenticate: Authenticate
    client_address: ClientAddress
    limits: ClientRateLimit
    budget: Budget
    budget_store: BudgetStore
    budget_rules: SqlBudgetRules
    budget_cache: CachedBudgetRules
    alerts: SoftLimitAlerts

    async def start(self) -> None:
        """Load the budget rules (before the first request)."""
        await self.budget_cache.start()

    async def aclose(self) -> None:
        """Settle budgets of requests still in flight; stop reloads and webhooks."""
        await self.limits.drain()
        await self.budget.drain()
        await self.budget_cache.aclose()
        await self.alerts.aclose()


def build_tenancy(
    settings: Settings,
    master_key: str,
    engine: AsyncEngine,
    redis: MultiplexedRedis | None,
    *,
    clock: Clock,
    counter: TokenCounter,
    prices: PriceBook,
    table: ModelTable,
    rejections: RejectionLog,
) -> Tenancy:
    """Every tenancy part from the settings; ``redis`` shares state between instances."""
    tenancy = settings.tenancy
    keys = SqlKeyStore(engine, time.time)
    verifier = KeyVerifier(
        master_key,
        keys,
        tenancy.tiers,
        cache_seconds=tenancy.key_cache_seconds,
        wall_clock=time.time,
    )
    failures = auth_failure_limiter(
        clock, redis, max_failures=max(1, tenancy.auth_failures_per_minute)
    )
    limits = ClientRateLimit(
        client_limit_store(clock, redis), LimitPolicy(tenancy), counter, rejections=rejections
    )
    rules = SqlBudgetRules(engine)
    cache = CachedBudgetRules(rules.list_rules, refresh_s=tenancy.budget_rules_refresh_seconds)
    alerts = SoftLimitAlerts(tenancy.budget_alert_webhook)
    estimate = CostEstimate(prices, table.models, table.usable, counter)
    store = _budget_store(settings, engine, redis)
    budget = Budget(
        cache,
        store,
        estimate.max_cost,
        estimate.actual_cost,
        alerts=alerts,
        tier_defaults={
            tier.name: [
                BudgetTemplate(
                    "key", tier.budget.period, tier.budget.soft_usd, tier.budget.hard_usd
                )
            ]
            for tier in tenancy.tiers.values()
            if tier.budget is not None
        },
    )
    return Tenancy(
        keys=keys,
        authenticate=Authenticate(verifier, failures),
        client_address=ClientAddress(tenancy.trusted_proxies),
        limits=limits,
        budget=budget,
        budget_store=store,
        budget_rules=rules,
        budget_cache=cache,
        alerts=alerts,
    )


def _budget_store(
    settings: Settings, engine: AsyncEngine, redis: MultiplexedRedis | None
) -> BudgetStore:
    ledger = SqlLedgerSpend(engine)
    if redis is None:
        return MemoryBudgetStore(time.time, ledger_spend=ledger)
    return RedisBudgetStore(
        redis, ledger_spend=ledger, fail_open=settings.tenancy.budgets_fail_open
    )
