"""The retry budget: an outage cannot multiply upstream traffic beyond 1 + ratio plus a floor."""

from __future__ import annotations

import pytest

from seawall.resilience.retry_budget import RetryBudget
from tests.resilience.fake_clock import FakeClock


def test_an_outage_of_1000_requests_produces_at_most_200_plus_floor_retries() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, min_per_second=1.0, window_seconds=10.0)
    for _ in range(1000):
        budget.record_request("gpt-4o@azure")
        clock.advance(0.001)
        # The upstream is down: every request wants up to three retries.
        for _ in range(3):
            budget.try_spend("gpt-4o@azure")
    assert budget.granted == 200 + 10  # ratio x requests + 1/s floor x 10 s window
    assert budget.refused == 3000 - 210


def test_a_long_outage_keeps_upstream_traffic_near_one_and_a_fifth() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.2, min_per_second=1.0, window_seconds=10.0)
    requests = 0
    for _ in range(6000):  # 100 requests a second for a minute, all failing
        budget.record_request("d")
        requests += 1
        while budget.try_spend("d"):
            pass
        clock.advance(0.01)
    sent_upstream = requests + budget.granted
    # At most a fifth more, plus the floor of 10 retries for each window in the minute.
    assert sent_upstream <= 1.2 * requests + 10 * 7
    assert budget.granted >= 0.2 * requests  # retries are rationed, not switched off


def test_a_quiet_deployment_can_still_retry_a_transient_failure() -> None:
    budget = RetryBudget(FakeClock(), ratio=0.2, min_per_second=1.0, window_seconds=10.0)
    budget.record_request("quiet")
    assert [budget.try_spend("quiet") for _ in range(11)] == [True] * 10 + [False]


def test_budget_refills_as_the_window_slides() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, ratio=0.0, min_per_second=0.5, window_seconds=10.0)
    assert [budget.try_spend("d") for _ in range(6)] == [True] * 5 + [False]
    clock.advance(5.0)
    assert not budget.try_spend("d")  # those retries are still inside the window
    clock.advance(5.0)
    assert budget.try_spend("d")  # ten seconds on, they have aged out


def test_deployments_have_separate_budgets() -> None:
    budget = RetryBudget(FakeClock(), ratio=0.0, min_per_second=0.1, window_seconds=10.0)
    assert budget.try_spend("down")
    assert not budget.try_spend("down")
    assert budget.try_spend("healthy")


def test_no_floor_and_no_traffic_means_no_retries() -> None:
    budget = RetryBudget(FakeClock(), ratio=0.5, min_per_second=0.0)
    assert not budget.try_spend("d")
    budget.record_request("d")
    budget.record_request("d")
    assert budget.try_spend("d")
    assert not budget.try_spend("d")
    assert (budget.granted, budget.refused) == (1, 2)


def test_idle_deployments_are_forgotten() -> None:
    clock = FakeClock()
    budget = RetryBudget(clock, window_seconds=10.0)
    for n in range(1000):
        budget.record_request(f"deployment-{n}")
        budget.try_spend(f"deployment-{n}")
    assert budget.tracked_deployments == 1000
    clock.advance(10.0)
    budget.record_request("still-busy")
    assert budget.tracked_deployments == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"ratio": -0.1},
        {"ratio": float("inf")},
        {"min_per_second": -1.0},
        {"window_seconds": 0.0},
        {"window_seconds": float("nan")},
    ],
)
def test_nonsense_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="retry budget"):
        RetryBudget(FakeClock(), **settings)
