"""What a request cost: each deployment's prices, resolved once, applied to its usage.

A deployment's price is, in order: its configured ``prices:``; the shipped table's row
for its provider and model (a dated snapshot such as ``gpt-4o-2024-08-06`` takes the
row of the longest known model id it extends, ``gpt-4o``); zero, for local runtimes
and for models the table does not know.

Token accounting is the same for every provider because the backends normalise it:
``Usage.prompt_tokens`` counts the whole prompt, cached tokens included (OpenAI's
``prompt_tokens`` already does; for Anthropic, whose ``input_tokens`` leave out cache
reads and writes, the backend adds them back). ``Usage.cached_tokens`` are the cache
reads (OpenAI ``prompt_tokens_details.cached_tokens``, Anthropic
``cache_read_input_tokens``). So a request costs: cached tokens at the cached-input
rate, the rest of the prompt at the input rate, completion tokens at the output
rate. Anthropic's cache writes, dearer than plain input, are billed at the input rate:
Seawall's prices have no column for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from seawall.config.schema import Deployment, Prices
from seawall.providers.base import Usage
from seawall.tenancy.price_table import PRICE_TABLE, PriceRow

FREE = Prices()
_PER_MTOK = 1_000_000
# What a dated snapshot adds to its model's id: -2024-08-06, -20250514, -0613, -latest.
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)")


class PriceBook:
    """Every deployment's prices, looked up once at start-up; pure arithmetic after that."""

    def __init__(
        self, deployments: Mapping[str, Deployment], table: Iterable[PriceRow] = PRICE_TABLE
    ) -> None:
        known = _index(table)
        self._prices: dict[str, Prices] = {}
        # Paid-provider deployments neither configured nor in the table: they cost zero,
        # which start-up may want to warn about.
        unpriced: list[str] = []
        for name, deployment in deployments.items():
            prices = deployment.prices
            if prices is None:
                row = find_row(known, deployment.provider, deployment.model)
                prices = row.prices if row is not None else FREE
                if row is None and deployment.provider in ("openai", "anthropic"):
                    unpriced.append(name)
            self._prices[name] = prices
        self.unpriced = tuple(unpriced)

    def prices(self, deployment_name: str) -> Prices:
        """The prices a deployment is billed at (zero for a name the book does not know)."""
        return self._prices.get(deployment_name, FREE)

    def cost_usd(self, deployment_name: str, usage: Usage) -> float:
        """What ``usage`` on this deployment cost, in USD."""
        prices = self._prices.get(deployment_name, FREE)
        prompt = max(usage.prompt_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt)
        return (
            (prompt - cached) * prices.input_per_mtok
            + cached * prices.cached_rate
            + max(usage.completion_tokens, 0) * prices.output_per_mtok
        ) / _PER_MTOK

    def max_cost_usd(
        self, deployment_name: str, prompt_tokens: int, max_output_tokens: int
    ) -> float:
        """The most a request can cost: every prompt token uncached, every output token used."""
        prices = self._prices.get(deployment_name, FREE)
        # max(): a configured cached rate above the input rate must not lower the bound.
        prompt_rate = max(prices.input_per_mtok, prices.cached_rate)
        return (
            max(prompt_tokens, 0) * prompt_rate + max(max_output_tokens, 0) * prices.output_per_mtok
        ) / _PER_MTOK


def find_row(
    known: Mapping[tuple[str, str], PriceRow], provider: str, model: str
) -> PriceRow | None:
    """The table row for a model id: exact, else the longest id it is a dated snapshot of."""
    model = model.lower()
    row = known.get((provider, model))
    if row is not None:
        return row
    best: PriceRow | None = None
    best_length = 0
    for (row_provider, row_model), candidate in known.items():
        if (
            row_provider == provider
            and len(row_model) > best_length
            and model.startswith(row_model)
            and _SNAPSHOT.fullmatch(model, len(row_model))
        ):
            best, best_length = candidate, len(row_model)
    return best


def _index(table: Iterable[PriceRow]) -> dict[tuple[str, str], PriceRow]:
    known: dict[tuple[str, str], PriceRow] = {}
    for row in table:
        for model in (row.model, *row.aliases):
            known[(row.provider, model.lower())] = row
    return known


def format_usd(amount: float) -> str:
    """A cost as a plain decimal string ("0.000123"): no exponent, no trailing zeros."""
    return f"{amount:.10f}".rstrip("0").rstrip(".") or "0"
