"""Balancing a model's requests over its deployments: weight, outstanding requests, latency."""

from __future__ import annotations

import random
from collections import Counter

from seawall.config.schema import Deployment
from seawall.resilience.balancer import Balancer
from tests.resilience.fake_clock import FakeClock


def deployment(name: str, weight: float = 1.0) -> Deployment:
    return Deployment(name=name, provider="openai", model="m", weight=weight)


def seeded(count: int) -> list[float]:
    """A fixed, well-spread sequence of random numbers."""
    rng = random.Random(7)
    return [rng.random() for _ in range(count)]


def firsts(balancer: Balancer, deployments: list[Deployment], times: int) -> Counter[str]:
    """Which deployment comes first, over ``times`` requests that finish at once."""
    counts: Counter[str] = Counter()
    for _ in range(times):
        counts[balancer.order(deployments)[0].name] += 1
    return counts


def test_idle_deployments_share_requests_by_weight() -> None:
    clock = FakeClock(randoms=seeded(2000))
    heavy, light = deployment("heavy", weight=3), deployment("light", weight=1)
    counts = firsts(Balancer(clock), [heavy, light], 1000)
    # Three to one, as the weights say.
    assert 2.5 < counts["heavy"] / counts["light"] < 3.5


def test_a_deployment_with_requests_in_flight_is_avoided() -> None:
    clock = FakeClock(randoms=seeded(2000))
    balancer = Balancer(clock)
    busy, idle = deployment("busy"), deployment("idle")
    for _ in range(5):
        balancer.started("busy")
    counts = firsts(balancer, [busy, idle], 200)
    # Five requests in flight make it a sixth as attractive as an idle one.
    assert counts["idle"] > 4 * counts["busy"] > 0
    assert balancer.outstanding("busy") == 5


def test_a_slow_deployment_gets_less_traffic_and_every_one_stays_a_fallback() -> None:
    clock = FakeClock(randoms=seeded(2000))
    balancer = Balancer(clock)
    slow, fast = deployment("slow"), deployment("fast")
    for _ in range(3):
        balancer.started("slow")
        balancer.finished("slow", 2.0)
        balancer.started("fast")
        balancer.finished("fast", 0.1)
    assert balancer.latency("slow") == 2.0
    counts = firsts(balancer, [slow, fast], 200)
    assert counts["fast"] > 2 * counts["slow"]
    # Whichever comes first, the other is still in the list, as a fallback.
    assert {d.name for d in balancer.order([slow, fast])} == {"slow", "fast"}


def test_a_failed_request_frees_its_place_without_touching_latency() -> None:
    balancer = Balancer(FakeClock())
    balancer.started("a")
    balancer.finished("a", None)
    assert balancer.outstanding("a") == 0
    assert balancer.latency("a") is None
