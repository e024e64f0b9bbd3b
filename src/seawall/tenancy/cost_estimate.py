"""A request's cost before and after it is answered, for budgets.

Before: the most it can cost on any deployment that might answer it (its model's,
its fallbacks' and its context fallback's), every prompt token uncached and every
allowed output token used. After: what the deployment that answered charges for
the usage it reported.
"""

from __future__ import annotations

from collections.abc import Mapping

from seawall.config.schema import Deployment, PublicModel
from seawall.pipeline.context import RequestContext
from seawall.pipeline.token_estimate import context_prompt_tokens, output_allowance
from seawall.tenancy.costs import PriceBook
from seawall.tokens import TokenCounter


class CostEstimate:
    """``estimate_max_cost`` and ``actual_cost`` of the budget stage."""

    def __init__(
        self,
        prices: PriceBook,
        models: Mapping[str, PublicModel],
        usable: Mapping[str, tuple[Deployment, ...]],
        counter: TokenCounter,
    ) -> None:
        self._prices = prices
        self._counter = counter
        # Public model -> the deployments that could answer for it and cost something.
        self._priced = {
            name: tuple(d for d in _reachable(name, models, usable) if _charges(prices, d))
            for name in models
        }

    def max_cost(self, ctx: RequestContext) -> float:
        """The most this request can cost, in USD."""
        model = ctx.public_model
        if model is None:
            return 0.0
        priced = self._priced.get(model.name, ())
        if not priced:
            return 0.0  # only free deployments (local models) can answer: no tokenizing
        prompt = context_prompt_tokens(self._counter, ctx)
        return max(
            self._prices.max_cost_usd(
                d.name, prompt, output_allowance(ctx.body, d.max_output_tokens, d.operation)
            )
            for d in priced
        )

    def actual_cost(self, ctx: RequestContext) -> float:
        """What the answer cost, in USD (zero when nothing answered)."""
        if ctx.deployment is None or ctx.usage is None:
            return 0.0
        return self._prices.cost_usd(ctx.deployment.name, ctx.usage)


def _charges(prices: PriceBook, deployment: Deployment) -> bool:
    rates = prices.prices(deployment.name)
    return rates.input_per_mtok > 0 or rates.output_per_mtok > 0 or rates.cached_rate > 0


def _reachable(
    name: str,
    models: Mapping[str, PublicModel],
    usable: Mapping[str, tuple[Deployment, ...]],
) -> tuple[Deployment, ...]:
    found: dict[str, Deployment] = {}
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        model = models.get(current)
        if model is None or current in seen:
            continue
        seen.add(current)
        for deployment in usable.get(current, ()):
            found.setdefault(deployment.name, deployment)
        pending.extend(model.fallbacks)
        if model.context_fallback is not None:
            pending.append(model.context_fallback)
    return tuple(found.values())
