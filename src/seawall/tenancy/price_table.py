"""The shipped price table: USD per million tokens for common OpenAI and Anthropic models.

Compiled on 2026-11-27. Every row names the page its figures come from and the date
they were checked there; where Seawall read the figures elsewhere (a dated copy of
the provider's page), ``read_from`` says where. Prices change: a deployment's own
``prices:`` in the configuration always wins over this table, and this table is a
default for convenience, not an invoice.

Models left out on purpose, because no source gave a figure this table can use:
tiered models (Claude Haiku 5.5 prices a request by its prompt length), models whose
cached-input rate changed without a dated page to cite (Claude Sonnet 5.5), and
models whose API id no source showed. A model the table does not know costs zero
until its deployment configures ``prices:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seawall.config.schema import Prices

COMPILED = "2026-11-27"

TableProvider = Literal["openai", "anthropic"]

_ANTHROPIC_EN = "https://platform.claude.com/docs/en/about-claude/pricing"
_ANTHROPIC_ZH = "https://platform.claude.com/docs/zh-CN/about-claude/pricing"
_ANTHROPIC_SONNET_5 = "https://platform.claude.com/docs/zh-CN/models/sonnet-5/overview"
_OPENAI = "https://platform.openai.com/docs/pricing"
# OpenAI's pricing page itself was not among the stored pages Seawall could read; these
# copies record each figure with the date it was checked against that page.
_GENAI_PRICES = (
    "https://github.com/pydantic/genai-prices/blob/"
    "01d6df8c6f465a479f1bb6ef1d17758e0bf1b7f7/prices/providers/openai.yml"
)
_HEX_OPENAI_RESPONSES = (
    "https://hex.pm/packages/openai_responses/0.4.1/files/lib/responses/pricing.ex"
)


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One model's published prices, with where and when they were read."""

    provider: TableProvider
    model: str
    input_per_mtok: float
    output_per_mtok: float
    # The page's "cached input" / "cache hits" rate; the input rate where it lists none.
    cached_input_per_mtok: float
    source: str
    checked: str  # ISO date the figures were checked against ``source``
    read_from: str | None = None
    # Other API ids the provider documents for the same model and price.
    aliases: tuple[str, ...] = ()

    @property
    def prices(self) -> Prices:
        """The row as configuration-shaped prices."""
        return Prices(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok)


def _anthropic(
    model: str,
    input_: float,
    cached: float,
    output: float,
    source: str = _ANTHROPIC_ZH,
    aliases: tuple[str, ...] = (),
) -> PriceRow:
    return PriceRow("anthropic", model, input_, output, cached, source, COMPILED, None, aliases)


def _openai(
    model: str,
    input_: float,
    cached: float,
    output: float,
    checked: str,
    read_from: str = _GENAI_PRICES,
    aliases: tuple[str, ...] = (),
) -> PriceRow:
    return PriceRow("openai", model, input_, output, cached, _OPENAI, checked, read_from, aliases)


# Anthropic: "Base input tokens", "Cache hits and refreshes" and "Output tokens"
# columns. Cache writes (1.25x or 2x input) have no column of their own in Seawall's
# prices; they are billed at the input rate (see ``seawall.tenancy.costs``).
# OpenAI: "Input", "Cached input" and "Output" of the Standard tier.
PRICE_TABLE: tuple[PriceRow, ...] = (
    _anthropic("claude-sonnet-5", 2.0, 0.20, 10.0, source=_ANTHROPIC_SONNET_5),
    _anthropic("claude-opus-4-7", 5.0, 0.50, 25.0, source=_ANTHROPIC_EN),
    _anthropic("claude-opus-4-6", 5.0, 0.50, 25.0, source=_ANTHROPIC_EN),
    _anthropic("claude-opus-4-5", 5.0, 0.50, 25.0),
    _anthropic("claude-opus-4-1", 15.0, 1.50, 75.0),
    _anthropic("claude-opus-4", 15.0, 1.50, 75.0, aliases=("claude-opus-4-0",)),
    _anthropic("claude-sonnet-4-6", 3.0, 0.30, 15.0),
    _anthropic("claude-sonnet-4-5", 3.0, 0.30, 15.0),
    _anthropic("claude-sonnet-4", 3.0, 0.30, 15.0, aliases=("claude-sonnet-4-0",)),
    _anthropic("claude-3-7-sonnet", 3.0, 0.30, 15.0),
    _anthropic("claude-haiku-4-5", 1.0, 0.10, 5.0),
    _anthropic("claude-3-5-haiku", 0.80, 0.08, 4.0),
    _anthropic("claude-3-opus", 15.0, 1.50, 75.0),
    _anthropic("claude-3-haiku", 0.25, 0.03, 1.25),
    _openai("gpt-5.1", 1.25, 0.125, 10.0, "2025-11-13", aliases=("gpt-5.1-chat-latest",)),
    _openai("gpt-5", 1.25, 0.125, 10.0, "2025-11-13", aliases=("gpt-5-chat-latest",)),
    _openai("gpt-5-mini", 0.25, 0.025, 2.0, "2025-11-13"),
    _openai("gpt-5-nano", 0.05, 0.005, 0.40, "2025-11-13"),
    _openai("gpt-4.1", 2.0, 0.50, 8.0, "2025-07-04"),
    _openai("gpt-4.1-mini", 0.40, 0.10, 1.60, "2025-07-04"),
    _openai("gpt-4.1-nano", 0.10, 0.025, 0.40, "2025-07-04"),
    _openai("gpt-4o", 2.50, 1.25, 10.0, "2025-07-04"),
    # The first GPT-4o snapshot kept its launch price; the page lists no cached rate.
    _openai("gpt-4o-2024-05-13", 5.0, 5.0, 15.0, "2025-06-03", _HEX_OPENAI_RESPONSES),
    _openai("gpt-4o-mini", 0.15, 0.075, 0.60, "2025-07-04"),
    _openai("o3", 2.0, 0.50, 8.0, "2025-07-12"),
    _openai("o4-mini", 1.10, 0.275, 4.40, "2025-07-04"),
    _openai("o3-mini", 1.10, 0.55, 4.40, "2025-07-04"),
    _openai("o1", 15.0, 7.50, 60.0, "2025-07-04"),
    _openai("o1-mini", 1.10, 0.55, 4.40, "2025-07-04"),
    # Embeddings have no output tokens and no prompt cache.
    _openai("text-embedding-3-small", 0.02, 0.02, 0.0, "2025-07-04"),
    _openai("text-embedding-3-large", 0.13, 0.13, 0.0, "2025-07-04"),
    _openai("text-embedding-ada-002", 0.10, 0.10, 0.0, "2025-07-04"),
)
