"""Budgets: hold the request's worst-case cost before the call, charge its cost after.

The stage collects the budgets that cover a request: those of its tenant, key, end
user (``x-seawall-user`` or the body's ``user``), session and feature tag, plus the
tier's default budgets (``BudgetTemplate``) for subjects without a rule of their own
for that period. It reserves ``estimate_max_cost(ctx)`` on all of them at once; a
spent hard budget answers 429 ``insufficient_quota`` with ``x-should-retry: false``.
After the call it settles ``actual_cost(ctx)`` (with ``ctx.usage`` set from the
answer): at once for answers and errors, when a stream ends however it ends. Soft
limits reached go to the alerts (``SoftLimitAlerts``).

A request no budget covers makes no store call at all. The stage sits after routing,
so the cost estimate can know the deployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from seawall.errors import BudgetExhausted
from seawall.pipeline.background import Background
from seawall.pipeline.context import RequestContext
from seawall.pipeline.pipeline import Handler, Reply
from seawall.pipeline.settling_stream import Settle, SettlingStream
from seawall.providers.base import ChatResult, EmbeddingResult, Usage
from seawall.tenancy.budgets import (
    TENANT_SCOPED,
    BudgetRuleLookup,
    BudgetStore,
    BudgetTemplate,
    Charge,
    OverBudget,
    Reservation,
    Scope,
    SoftLimitCrossed,
    WallClock,
)

logger = logging.getLogger(__name__)

CostFunction = Callable[[RequestContext], float]


class AlertSink(Protocol):
    """Where soft limits reached go (``tenancy.budget_alerts.SoftLimitAlerts``)."""

    def notify(self, crossed: SoftLimitCrossed) -> None:
        """Alert on one soft limit reached; must not block."""
        ...


# Retry-After for a spent total budget: it never resets, so "not soon".
TOTAL_BUDGET_RETRY_AFTER_S = 86400.0


class Budget:
    """Reserves and settles budget spend around the rest of the pipeline.

    ``refusals`` counts requests refused by a hard budget (for metrics).
    """

    name = "budget"

    def __init__(
        self,
        rules: BudgetRuleLookup,
        store: BudgetStore,
        estimate_max_cost: CostFunction,
        actual_cost: CostFunction,
        *,
        alerts: AlertSink | None = None,
        tier_defaults: Mapping[str, Sequence[BudgetTemplate]] | None = None,
        wall_clock: WallClock = time.time,
    ) -> None:
        self.refusals = 0
        self._rules = rules
        self._store = store
        self._estimate_max_cost = estimate_max_cost
        self._actual_cost = actual_cost
        self._alerts = alerts
        self._wall_clock = wall_clock
        # tier -> scope -> templates, built once.
        self._templates: dict[str, dict[str, tuple[BudgetTemplate, ...]]] = {}
        for tier, templates in (tier_defaults or {}).items():
            by_scope: dict[str, list[BudgetTemplate]] = {}
            for template in templates:
                by_scope.setdefault(template.scope, []).append(template)
            self._templates[tier] = {scope: tuple(found) for scope, found in by_scope.items()}
        self._settling = Background()

    def wrap(self, call_next: Handler) -> Handler:
        """Reserve before ``call_next``, settle when the answer is complete."""

        async def budget(ctx: RequestContext) -> Reply:
            return await self.around(ctx, await self.hold(ctx), call_next)

        return budget

    async def hold(self, ctx: RequestContext) -> Reservation | None:
        """Reserve the request's worst-case cost, or raise; None when no budget covers it."""
        holding = self.holding(ctx)
        return None if holding is None else await holding

    def holding(self, ctx: RequestContext) -> Coroutine[Any, Any, Reservation] | None:
        """``hold``'s store call, not started; None when no budget covers the request."""
        charges = self.charges_for(ctx)
        return self._reserve(ctx, charges) if charges else None

    async def around(
        self, ctx: RequestContext, reservation: Reservation | None, call_next: Handler
    ) -> Reply:
        """Run ``call_next`` and settle the reservation with what the request cost."""
        if reservation is None:
            return await call_next(ctx)
        try:
            reply = await call_next(ctx)
        except asyncio.CancelledError:
            self._settle_later(ctx, reservation)
            raise
        except BaseException:
            await self._settle(ctx, reservation)
            raise
        if isinstance(reply, ChatResult | EmbeddingResult):
            ctx.usage = reply.usage
            # Off the response path: the answer does not wait for the settlement.
            self._settle_later(ctx, reservation)
            return reply
        return SettlingStream(reply, self._stream_settler(ctx, reservation), self._settling)

    def release(self, ctx: RequestContext, reservation: Reservation | None) -> None:
        """Settle the reservation of a request that went no further (it cost nothing)."""
        if reservation is not None:
            self._settle_later(ctx, reservation)

    def charges_for(self, ctx: RequestContext) -> tuple[Charge, ...]:
        """Every budget that covers this request."""
        principal = ctx.principal
        tenant_id = principal.tenant_id if principal is not None else None
        templates = self._templates.get(principal.tier, {}) if principal is not None else {}
        subjects: tuple[tuple[Scope, str | None], ...] = (
            ("tenant", tenant_id),
            ("key", principal.key_id if principal is not None else None),
            ("user", ctx.end_user()),
            ("session", ctx.identity.session_id or None),
            ("feature", ctx.identity.feature or None),
        )
        charges: list[Charge] = []
        for scope, subject in subjects:
            if subject is None:
                continue
            counter_tenant = tenant_id if scope in TENANT_SCOPED else None
            rules = self._rules.rules_for(scope, subject)
            for rule in rules:
                charges.append(Charge(rule, counter_tenant))
            for template in templates.get(scope, ()):
                # A subject's own rule for the period replaces the tier's default.
                if all(rule.period != template.period for rule in rules):
                    charges.append(Charge(template.for_subject(subject), counter_tenant))
        return tuple(charges)

    async def drain(self) -> None:
        """Wait for settlements still running in the background (at shutdown, in tests)."""
        await self._settling.drain()

    async def _reserve(self, ctx: RequestContext, charges: Sequence[Charge]) -> Reservation:
        try:
            return await self._store.reserve(charges, self._estimate_max_cost(ctx))
        except OverBudget as over:
            self.refusals += 1
            raise self._exhausted(over) from None

    def _exhausted(self, over: OverBudget) -> BudgetExhausted:
        rule = over.charge.rule
        end = over.window.end
        if end is None:
            resets, retry_after = "", TOTAL_BUDGET_RETRY_AFTER_S
        else:
            moment = datetime.fromtimestamp(end, UTC).isoformat().replace("+00:00", "Z")
            resets, retry_after = f" It resets at {moment}.", end - self._wall_clock()
        return BudgetExhausted(
            f"You exceeded your budget: the {rule.period} budget of {rule.hard_usd:g} USD "
            f"for {rule.scope} '{rule.subject}' is spent.{resets}",
            retry_after=max(retry_after, 0.0),
        )

    async def _settle(self, ctx: RequestContext, reservation: Reservation) -> None:
        try:
            crossings = await self._store.settle(reservation, self._actual_cost(ctx))
        except Exception:
            # The answer is already the client's; the ledger still has the cost.
            logger.exception("budgets: could not settle request %s", ctx.request_id)
            return
        if self._alerts is not None:
            for crossed in crossings:
                self._alerts.notify(crossed)

    def _stream_settler(self, ctx: RequestContext, reservation: Reservation) -> Settle:
        async def settle(usage: Usage) -> None:
            ctx.usage = usage
            await self._settle(ctx, reservation)

        return settle

    def _settle_later(self, ctx: RequestContext, reservation: Reservation) -> None:
        # The answer need not wait, and a cancelled request (the client left) could not.
        self._settling.run(self._settle(ctx, reservation))
