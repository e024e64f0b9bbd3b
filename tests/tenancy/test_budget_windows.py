"""Budget periods are UTC days, UTC months, or all time."""

from __future__ import annotations

import pytest

from seawall.tenancy.budgets import BudgetTemplate, Window, to_nanos, to_usd, window_of
from tests.tenancy.wall_clock import utc


@pytest.mark.parametrize(
    ("period", "at", "start", "end"),
    [
        ("daily", "2026-03-15T00:00:00", "2026-03-15T00:00:00", "2026-03-16T00:00:00"),
        ("daily", "2026-03-15T23:59:59.999", "2026-03-15T00:00:00", "2026-03-16T00:00:00"),
        ("daily", "2026-12-31T12:00:00", "2026-12-31T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2026-03-15T12:00:00", "2026-03-01T00:00:00", "2026-04-01T00:00:00"),
        ("monthly", "2028-02-29T23:59:59", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("monthly", "2026-12-01T00:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_windows_begin_at_utc_midnight_and_on_the_first_of_the_month(
    period: str, at: str, start: str, end: str
) -> None:
    assert window_of(period, utc(at)) == Window(utc(start), utc(end))  # type: ignore[arg-type]


def test_the_total_window_is_one_window_forever() -> None:
    assert window_of("total", utc("2026-03-15T12:00:00")) == Window(0.0, None)
    assert window_of("total", utc("2099-01-01T00:00:00")) == Window(0.0, None)


def test_money_is_counted_exactly_in_nano_dollars() -> None:
    assert sum(to_nanos(0.02) for _ in range(50)) == to_nanos(1.0)
    assert to_usd(to_nanos(0.000_000_3)) == 0.000_000_3
    assert to_nanos(-1.0) == 0


def test_a_template_makes_a_rule_for_any_subject() -> None:
    template = BudgetTemplate("key", "daily", soft_usd=1.0, hard_usd=2.0)
    rule = template.for_subject("key_7")
    assert (rule.scope, rule.subject, rule.period, rule.soft_usd, rule.hard_usd) == (
        "key", "key_7", "daily", 1.0, 2.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="above its hard"):
        BudgetTemplate("key", "daily", soft_usd=3.0, hard_usd=2.0)
