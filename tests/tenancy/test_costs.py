"""Prices per deployment and what a request costs: table, snapshots, overrides, cache."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from seawall.config.schema import Deployment, Prices, ProviderKind
from seawall.providers.base import Usage
from seawall.tenancy.costs import PriceBook, format_usd
from seawall.tenancy.price_table import COMPILED, PRICE_TABLE


def book(*deployments: Deployment) -> PriceBook:
    return PriceBook({d.name: d for d in deployments})


def priced(model: str, provider: ProviderKind = "openai") -> Prices:
    """What a deployment of this model is billed at when it configures no prices."""
    return book(Deployment("d", provider, model)).prices("d")


def test_known_models_take_their_table_row() -> None:
    assert priced("gpt-4o") == Prices(2.50, 10.0, 1.25)
    assert priced("gpt-4o-mini") == Prices(0.15, 0.60, 0.075)
    assert priced("claude-haiku-4-5", "anthropic") == Prices(1.0, 5.0, 0.10)
    assert priced("text-embedding-3-small") == Prices(0.02, 0.0, 0.02)


@pytest.mark.parametrize(
    ("provider", "snapshot", "model"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
        ("openai", "o3-2025-04-16", "o3"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("anthropic", "claude-sonnet-4-0", "claude-sonnet-4"),
    ],
)
def test_a_dated_snapshot_is_billed_as_its_model(
    provider: ProviderKind, snapshot: str, model: str
) -> None:
    assert priced(snapshot, provider) == priced(model, provider) != Prices()


def test_longest_match_wins_and_old_tiers_are_not_confused_with_new() -> None:
    # Opus 4 (May 2025) kept the old price; Opus 4.6 is a third of it.
    assert priced("claude-opus-4-20250514", "anthropic").input_per_mtok == 15.0
    assert priced("claude-opus-4-6", "anthropic").input_per_mtok == 5.0
    # A snapshot the table lists on its own keeps its own price.
    assert priced("gpt-4o-2024-05-13").input_per_mtok == 5.0


def test_a_different_model_sharing_a_prefix_is_not_a_snapshot() -> None:
    book_ = book(
        Deployment("tts", "openai", "gpt-4o-mini-tts"),
        Deployment("rt", "openai", "gpt-4o-realtime-preview"),
        Deployment("mini", "openai", "gpt-4o-mini"),
    )
    assert book_.prices("tts") == book_.prices("rt") == Prices()
    assert book_.unpriced == ("tts", "rt")


def test_configured_prices_win_over_the_table() -> None:
    own = Prices(input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=0.5)
    prices = book(Deployment("d", "openai", "gpt-4o", prices=own))
    assert prices.prices("d") == own
    assert prices.unpriced == ()


def test_local_models_cost_nothing_unless_configured() -> None:
    own = Prices(input_per_mtok=0.01, output_per_mtok=0.02)
    prices = book(
        Deployment("llama", "local-llama", "smollm2"),
        # A local runtime serving a file named like a paid model is still free.
        Deployment("lookalike", "local-llama", "gpt-4o"),
        Deployment("minilm", "local-embedding", "all-minilm", operation="embeddings"),
        Deployment("metered", "local-llama", "smollm2", prices=own),
    )
    assert prices.prices("llama") == prices.prices("lookalike") == Prices()
    assert prices.cost_usd("minilm", Usage(prompt_tokens=10_000)) == 0.0
    assert prices.prices("metered") == own
    # Free on purpose is not "unpriced".
    assert prices.unpriced == ()


def test_unknown_models_cost_nothing_and_are_reported() -> None:
    prices = book(Deployment("vllm", "openai", "my-finetune"))
    assert prices.cost_usd("vllm", Usage(prompt_tokens=1000, completion_tokens=1000)) == 0.0
    assert prices.unpriced == ("vllm",)
    assert prices.cost_usd("no-such-deployment", Usage(prompt_tokens=5)) == 0.0


def test_cost_bills_cached_prompt_tokens_at_the_cached_rate() -> None:
    prices = book(Deployment("d", "openai", "gpt-4o"))
    # 600 uncached at 2.50, 400 cached at 1.25, 100 output at 10.00 (per million).
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=400)
    assert prices.cost_usd("d", usage) == pytest.approx((600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6)
    assert prices.cost_usd("d", usage) < prices.cost_usd("d", Usage(1000, 100))


def test_anthropic_cache_reads_are_billed_at_the_cache_hit_rate() -> None:
    prices = book(Deployment("d", "anthropic", "claude-sonnet-4-5"))
    # The backend reports Anthropic input_tokens=200, cache_read_input_tokens=800 as a
    # 1,000-token prompt of which 800 are cached.
    usage = Usage(prompt_tokens=1000, completion_tokens=50, cached_tokens=800)
    assert prices.cost_usd("d", usage) == pytest.approx((200 * 3 + 800 * 0.30 + 50 * 15) / 1e6)


def test_cached_tokens_never_exceed_the_prompt() -> None:
    prices = book(Deployment("d", "openai", "gpt-4o"))
    odd = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=500)
    assert prices.cost_usd("d", odd) == pytest.approx(100 * 1.25 / 1e6)


def test_max_cost_is_the_worst_case_of_any_usage_within_its_bounds() -> None:
    prices = book(Deployment("d", "openai", "gpt-4o"))
    worst = prices.max_cost_usd("d", prompt_tokens=1000, max_output_tokens=500)
    assert worst == pytest.approx((1000 * 2.5 + 500 * 10) / 1e6)
    for usage in (Usage(1000, 500), Usage(1000, 500, cached_tokens=1000), Usage(10, 1)):
        assert prices.cost_usd("d", usage) <= worst
    assert prices.max_cost_usd("unknown", 1000, 500) == 0.0


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0.000123, "0.000123"), (0.0, "0"), (1.5e-8, "0.000000015"), (12.5, "12.5"), (3.0, "3")],
)
def test_costs_are_written_as_plain_decimals(amount: float, text: str) -> None:
    assert format_usd(amount) == text
    assert Decimal(text) == pytest.approx(Decimal(repr(amount)))


def test_every_table_row_cites_a_dated_source_and_has_sane_prices() -> None:
    compiled = date.fromisoformat(COMPILED)
    seen: set[tuple[str, str]] = set()
    for row in PRICE_TABLE:
        assert re.fullmatch(r"https://\S+", row.source), row.model
        assert row.read_from is None or re.fullmatch(r"https://\S+", row.read_from)
        assert date.fromisoformat(row.checked) <= compiled, row.model
        assert row.input_per_mtok > 0, row.model
        assert 0 < row.cached_input_per_mtok <= row.input_per_mtok, row.model
        # Only embedding models have no output tokens to bill.
        assert row.output_per_mtok > 0 or row.model.startswith("text-embedding"), row.model
        for model in (row.model, *row.aliases):
            assert model == model.lower()
            assert (row.provider, model) not in seen, model
            seen.add((row.provider, model))
