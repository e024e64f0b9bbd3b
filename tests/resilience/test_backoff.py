"""Retry delays: exponential growth, full jitter, a cap, and Retry-After as a floor."""

from __future__ import annotations

import pytest

from seawall.resilience.backoff import Backoff
from tests.resilience.fake_clock import FakeClock


def test_delays_double_per_retry_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=0.25, cap_seconds=8.0)
    ceilings = [backoff.delay(retry, random=1.0) for retry in range(1, 9)]
    assert ceilings == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_full_jitter_spreads_clients_that_failed_together() -> None:
    clock = FakeClock(randoms=[0.0, 0.25, 0.5, 0.75])
    backoff = Backoff()
    delays = [backoff.delay(3, clock.random()) for _ in range(4)]
    assert delays == [0.0, 0.25, 0.5, 0.75]  # anywhere in [0, 1 s) for the third retry


def test_a_very_late_retry_waits_the_cap_instead_of_overflowing() -> None:
    assert Backoff(cap_seconds=30.0).delay(10_000, random=1.0) == 30.0


def test_never_retries_sooner_than_the_upstream_asked() -> None:
    backoff = Backoff(retry_after_jitter=0.1)
    assert backoff.delay(1, random=0.0, retry_after=5.0) == 5.0
    # Retry-After beyond the cap is still honoured: the upstream knows its own recovery.
    assert backoff.delay(9, random=1.0, retry_after=30.0) == pytest.approx(33.0)


def test_clients_told_the_same_retry_after_come_back_spread_out() -> None:
    backoff = Backoff(retry_after_jitter=0.1)
    delays = [backoff.delay(1, random=r, retry_after=1.0) for r in (0.0, 0.3, 0.6, 0.9)]
    assert delays == pytest.approx([1.0, 1.03, 1.06, 1.09])


def test_jittered_backoff_wins_when_longer_than_retry_after() -> None:
    assert Backoff().delay(6, random=1.0, retry_after=0.5) == 8.0


def test_a_negative_retry_after_is_treated_as_no_wait() -> None:
    assert Backoff().delay(1, random=0.5, retry_after=-3.0) == 0.125


@pytest.mark.parametrize(
    "settings",
    [
        {"base_seconds": 0.0},
        {"base_seconds": -1.0},
        {"cap_seconds": 0.0},
        {"base_seconds": 2.0, "cap_seconds": 1.0},
        {"retry_after_jitter": -0.1},
        {"base_seconds": float("nan")},
    ],
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**settings)


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        Backoff().delay(0, random=0.5)


def test_random_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="random"):
        Backoff().delay(1, random=1.5)
