"""Provider rate budgets: one contract, run against the in-memory and the Redis store.

The memory store runs on a ``FakeClock``; the Redis store on Redis server time, so its
time-dependent variants advance by really sleeping (briefly) and compare waits with a
tolerance of a few tens of milliseconds for the time that passes between calls.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from seawall.resilience.rate_budget import (
    GROWTH_PER_SECOND,
    MemoryRateBudget,
    RateBudget,
    RateLimits,
)
from seawall.resilience.rate_budget_redis import RedisRateBudget
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_keys import RATE
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.tcp_proxy import TcpProxy

REDIS_URL = "redis://127.0.0.1:6379/0"
DEPLOYMENT = "openai/gpt-4o-mini@eastus"
# Requests only, at one per second, so waits are whole seconds; no learning unless asked.
ONE_PER_SECOND = RateLimits(rpm=60, adaptive=False)
# 100 tokens per second, requests unlimited.
HUNDRED_TOKENS_PER_SECOND = RateLimits(tpm=6000, adaptive=False)
ADAPTIVE = RateLimits()


@dataclass
class RateEnv:
    """A store under test, how to let time pass for it, and how exact its waits are."""

    budget: RateBudget
    advance: Callable[[float], Awaitable[None]]
    tolerance: float
    kind: str

    def near(self, expected: float) -> object:
        """``expected`` up to the time that passes between calls on this store."""
        return pytest.approx(expected, abs=self.tolerance)

    def rate_near(self, expected: float) -> object:
        """A rate measured over about a second of this store's time.

        Redis measures with its own clock, so the calls' real duration (up to the
        tolerance) stretches the span a rate is measured over.
        """
        return pytest.approx(expected, rel=max(0.02, self.tolerance))

    async def waits(self, count: int, limits: RateLimits, tokens: int = 0) -> list[float]:
        """The waits of ``count`` reservations in a row, each allowed to wait a minute."""
        waits = []
        for _ in range(count):
            reservation = await self.budget.reserve(DEPLOYMENT, limits, tokens, max_wait=60)
            assert reservation.granted
            waits.append(reservation.wait)
        return waits


def redis_prefix() -> str:
    """A key prefix of this test's own."""
    return f"{RATE}test-{secrets.token_hex(6)}:"


@pytest.fixture
async def rate_redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix, with every key under it deleted after the test."""
    prefix = redis_prefix()
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def rate_env(
    request: pytest.FixtureRequest, rate_redis_prefix: str
) -> AsyncIterator[RateEnv]:
    """Each store, empty."""
    if request.param == "memory":
        clock = FakeClock()

        async def advance_clock(seconds: float) -> None:
            clock.advance(seconds)

        yield RateEnv(MemoryRateBudget(clock), advance_clock, tolerance=1e-9, kind="memory")
        return

    connection = RedisConnection(REDIS_URL)
    guard = FailOpenGuard("rate budget", time.monotonic)
    budget = RedisRateBudget(
        connection.client,
        fallback=MemoryRateBudget(FakeClock()),
        guard=guard,
        prefix=rate_redis_prefix,
    )
    try:
        yield RateEnv(budget, asyncio.sleep, tolerance=0.05, kind="redis")
        # Every answer came from Redis, not from the fail-open fallback.
        assert guard.outages == 0
    finally:
        await connection.aclose()


# --- Request and token schedules ---------------------------------------------------


async def test_rpm_spaces_requests_one_interval_apart(rate_env: RateEnv) -> None:
    waits = await rate_env.waits(4, ONE_PER_SECOND)
    assert waits == [rate_env.near(0), rate_env.near(1), rate_env.near(2), rate_env.near(3)]


async def test_burst_seconds_let_that_much_of_the_rate_go_at_once(rate_env: RateEnv) -> None:
    limits = RateLimits(rpm=60, burst_seconds=2.0, adaptive=False)
    waits = await rate_env.waits(4, limits)
    assert waits == [rate_env.near(0), rate_env.near(0), rate_env.near(1), rate_env.near(2)]


async def test_concurrent_reservations_queue_one_behind_another(rate_env: RateEnv) -> None:
    reservations = await asyncio.gather(
        *(rate_env.budget.reserve(DEPLOYMENT, ONE_PER_SECOND, 0, max_wait=60) for _ in range(5))
    )
    waits = sorted(reservation.wait for reservation in reservations)
    assert waits == [rate_env.near(second) for second in range(5)]


async def test_a_refused_reservation_books_nothing(rate_env: RateEnv) -> None:
    await rate_env.waits(3, ONE_PER_SECOND)

    refused = await rate_env.budget.reserve(DEPLOYMENT, ONE_PER_SECOND, 0, max_wait=1.5)
    assert not refused.granted
    assert not refused.parked
    assert refused.wait == rate_env.near(3)

    # The refused request did not take the slot at 3 s.
    assert await rate_env.waits(1, ONE_PER_SECOND) == [rate_env.near(3)]


async def test_deployments_have_separate_budgets(rate_env: RateEnv) -> None:
    await rate_env.waits(3, ONE_PER_SECOND)
    other = await rate_env.budget.reserve("other", ONE_PER_SECOND, 0, max_wait=0)
    assert other.granted
    assert other.wait == rate_env.near(0)


async def test_tokens_follow_tpm_and_settle_refunds_and_charges(rate_env: RateEnv) -> None:
    limits = HUNDRED_TOKENS_PER_SECOND
    assert await rate_env.waits(2, limits, tokens=100) == [rate_env.near(0), rate_env.near(1)]

    # The second request used 20 of its 100 tokens: 0.8 s of the schedule come back.
    await rate_env.budget.settle(DEPLOYMENT, limits, reserved_tokens=100, used_tokens=20)
    assert await rate_env.waits(1, limits, tokens=100) == [rate_env.near(1.2)]

    # It used 300 of 100: the next request waits 2 s more.
    await rate_env.budget.settle(DEPLOYMENT, limits, reserved_tokens=100, used_tokens=300)
    assert await rate_env.waits(1, limits, tokens=100) == [rate_env.near(4.2)]


async def test_a_refund_does_not_move_the_schedule_before_now(rate_env: RateEnv) -> None:
    limits = HUNDRED_TOKENS_PER_SECOND
    await rate_env.waits(1, limits, tokens=100)
    for _ in range(3):
        await rate_env.budget.settle(DEPLOYMENT, limits, reserved_tokens=100, used_tokens=0)

    # No credit was banked: one request goes now, the next one a second later.
    assert await rate_env.waits(2, limits, tokens=100) == [rate_env.near(0), rate_env.near(1)]


async def test_a_request_bigger_than_the_token_burst_goes_and_pushes_the_next(
    rate_env: RateEnv,
) -> None:
    limits = HUNDRED_TOKENS_PER_SECOND
    big = await rate_env.budget.reserve(DEPLOYMENT, limits, 1000, max_wait=0)
    assert big.granted
    assert big.wait == rate_env.near(0)

    small = await rate_env.budget.reserve(DEPLOYMENT, limits, 10, max_wait=0)
    assert not small.granted
    assert small.wait == rate_env.near(10)


async def test_requests_and_tokens_both_apply_and_the_later_wins(rate_env: RateEnv) -> None:
    limits = RateLimits(rpm=60, tpm=6000, adaptive=False)
    # Small requests: the request schedule decides.
    assert await rate_env.waits(2, limits, tokens=10) == [rate_env.near(0), rate_env.near(1)]
    # 500 tokens go at the next request slot (2 s) and take 5 s of the token schedule.
    assert await rate_env.waits(1, limits, tokens=500) == [rate_env.near(2)]
    # So the next small request waits for the tokens, not for its request slot at 3 s.
    assert await rate_env.waits(1, limits, tokens=10) == [rate_env.near(7)]


async def test_without_limits_or_a_learned_rate_requests_are_unlimited(rate_env: RateEnv) -> None:
    for limits in (RateLimits(), RateLimits(adaptive=False)):
        waits = await rate_env.waits(50, limits, tokens=10_000)
        assert waits == [0.0] * 50

    snapshot = await rate_env.budget.snapshot(DEPLOYMENT)
    assert snapshot["adaptive_rate"] is None
    assert snapshot["request_backlog_seconds"] == 0.0
    assert snapshot["token_backlog_seconds"] == 0.0


# --- Adaptive rate -----------------------------------------------------------------


async def observe_successes(env: RateEnv, count: int, limits: RateLimits = ADAPTIVE) -> None:
    """Report ``count`` successful answers."""
    for _ in range(count):
        await env.budget.observe(DEPLOYMENT, limits, rate_limited=False)


async def learned_rate(env: RateEnv) -> float | None:
    """The store's learned request rate for the deployment."""
    return (await env.budget.snapshot(DEPLOYMENT))["adaptive_rate"]


async def learn_rate(env: RateEnv, per_second: int) -> None:
    """Make the store learn ``per_second``: a second of traffic, then a 429.

    One success starts the stretch of traffic; a second later the rest of the
    successes and a 429 arrive, so the provider accepted ``per_second`` in one second.
    """
    await observe_successes(env, 1)
    await env.advance(1.0)
    await observe_successes(env, per_second - 1)
    await env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)


async def test_a_429_learns_the_success_rate_measured_over_the_traffic(
    rate_env: RateEnv,
) -> None:
    await learn_rate(rate_env, 10)

    assert await learned_rate(rate_env) == rate_env.rate_near(10.0)
    waits = await rate_env.waits(3, ADAPTIVE)
    assert waits == [rate_env.near(0), rate_env.near(0.1), rate_env.near(0.2)]


async def test_429s_in_the_first_second_of_traffic_teach_nothing(rate_env: RateEnv) -> None:
    # The first 429s of a burst come back before its successes: too early to judge.
    await observe_successes(rate_env, 1)
    for _ in range(5):
        await rate_env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)

    assert await learned_rate(rate_env) is None
    assert await rate_env.waits(5, ADAPTIVE) == [0.0] * 5


async def test_429s_after_a_second_without_successes_learn_the_minimum_rate(
    rate_env: RateEnv,
) -> None:
    # Before the rate is learned nothing limits requests; afterwards the backlog does
    # not burst through.
    assert await rate_env.waits(5, ADAPTIVE) == [0.0] * 5
    await rate_env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)
    await rate_env.advance(1.0)
    await rate_env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)

    assert await learned_rate(rate_env) == pytest.approx(0.5, rel=0.01)
    assert await rate_env.waits(2, ADAPTIVE) == [rate_env.near(0), rate_env.near(2)]


async def test_the_429s_of_one_burst_lower_the_rate_once(rate_env: RateEnv) -> None:
    await learn_rate(rate_env, 40)
    learned = await learned_rate(rate_env)
    assert learned == rate_env.rate_near(40.0)

    # More 429s within the second teach nothing more: they belong to the same burst.
    for _ in range(5):
        await rate_env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)
    assert await learned_rate(rate_env) == pytest.approx(learned, rel=0.01)


async def test_a_429_never_raises_the_learned_rate(rate_env: RateEnv) -> None:
    await learn_rate(rate_env, 5)
    await rate_env.advance(1.1)
    # A burst measured more successes than the learned rate allows.
    await observe_successes(rate_env, 40)
    await rate_env.budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)

    rate = await learned_rate(rate_env)
    assert rate is not None
    assert rate < 5.0 * 1.01 * (1 + GROWTH_PER_SECOND) ** 1.2


async def test_the_learned_rate_grows_five_percent_per_second(rate_env: RateEnv) -> None:
    await learn_rate(rate_env, 10)
    learned = await learned_rate(rate_env)
    assert learned is not None
    await rate_env.advance(1.0)

    assert await learned_rate(rate_env) == pytest.approx(learned * 1.05, rel=0.005)


async def test_the_effective_rate_is_the_lower_of_rpm_and_the_learned_rate(
    rate_env: RateEnv,
) -> None:
    await learn_rate(rate_env, 5)

    # Learned 5/s, configured 1/s: the configuration holds.
    assert await rate_env.waits(2, RateLimits(rpm=60)) == [rate_env.near(0), rate_env.near(1)]
    # Configured 600/s is too high: the learned 5/s holds.
    waits = await rate_env.waits(2, RateLimits(rpm=36_000))
    assert waits[1] - waits[0] == pytest.approx(0.2, abs=max(rate_env.tolerance, 0.005))


async def test_with_adaptive_off_429s_teach_nothing(rate_env: RateEnv) -> None:
    limits = RateLimits(adaptive=False)
    await observe_successes(rate_env, 10, limits)
    await rate_env.budget.observe(DEPLOYMENT, limits, rate_limited=True)

    assert await learned_rate(rate_env) is None
    assert await rate_env.waits(5, limits) == [0.0] * 5


async def test_the_learned_rate_is_forgotten_after_a_quiet_minute() -> None:
    # Memory only: a minute of Redis server time is too long for a test; the
    # Redis-specific variant below moves the stored 429 time back instead.
    clock = FakeClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    env = RateEnv(MemoryRateBudget(clock), advance, tolerance=1e-9, kind="memory")
    await learn_rate(env, 5)

    await env.advance(59.0)
    assert await learned_rate(env) is not None
    await env.advance(1.0)
    assert await learned_rate(env) is None
    assert await env.waits(5, ADAPTIVE) == [0.0] * 5


# --- Parking -----------------------------------------------------------------------

PARKING = RateLimits(adaptive=False, park_after_seconds=10.0)


async def test_a_429_with_a_long_retry_after_parks_the_deployment(rate_env: RateEnv) -> None:
    await rate_env.budget.observe(DEPLOYMENT, PARKING, rate_limited=True, retry_after=30.0)

    refused = await rate_env.budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=5)
    assert not refused.granted
    assert refused.parked
    assert refused.wait == rate_env.near(30)

    # A caller that can wait out the parking is booked for its end.
    later = await rate_env.budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=31)
    assert later.granted
    assert later.wait == rate_env.near(30)
    assert (await rate_env.budget.snapshot(DEPLOYMENT))["parked_seconds"] == rate_env.near(30)


async def test_an_exhausted_quota_parks_for_its_retry_after_or_a_minute(
    rate_env: RateEnv,
) -> None:
    await rate_env.budget.observe(DEPLOYMENT, PARKING, rate_limited=True, quota_exhausted=True)
    await rate_env.budget.observe(
        "other", PARKING, rate_limited=True, retry_after=5.0, quota_exhausted=True
    )

    unknown = await rate_env.budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=0)
    assert (unknown.granted, unknown.parked) == (False, True)
    assert unknown.wait == rate_env.near(60)
    # A quota parks even when its Retry-After is short.
    known = await rate_env.budget.reserve("other", PARKING, 0, max_wait=0)
    assert (known.granted, known.parked) == (False, True)
    assert known.wait == rate_env.near(5)


async def test_a_429_with_a_short_retry_after_does_not_park(rate_env: RateEnv) -> None:
    for limits in (PARKING, ADAPTIVE):
        await rate_env.budget.observe(DEPLOYMENT, limits, rate_limited=True, retry_after=2.0)
        reservation = await rate_env.budget.reserve(DEPLOYMENT, limits, 0, max_wait=0)
        assert reservation.granted
        assert not reservation.parked
        assert (await rate_env.budget.snapshot(DEPLOYMENT))["parked_seconds"] == 0.0


async def test_parking_ends_on_time(rate_env: RateEnv) -> None:
    await rate_env.budget.observe(
        DEPLOYMENT, PARKING, rate_limited=False, retry_after=0.3, quota_exhausted=True
    )
    assert not (await rate_env.budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=0)).granted

    await rate_env.advance(0.4)
    reservation = await rate_env.budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=0)
    assert reservation.granted
    assert reservation.wait == 0.0


# --- Redis only --------------------------------------------------------------------


@pytest.fixture
async def rate_connections() -> AsyncIterator[tuple[RedisConnection, RedisConnection]]:
    """Two independent clients, as two Seawall instances would have."""
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()


def redis_budget(connection: RedisConnection, prefix: str) -> tuple[RedisRateBudget, FailOpenGuard]:
    """A Redis store on ``connection`` and the guard it reports to."""
    guard = FailOpenGuard("rate budget", time.monotonic)
    fallback = MemoryRateBudget(FakeClock())
    return RedisRateBudget(connection.client, fallback=fallback, guard=guard, prefix=prefix), guard


async def test_two_instances_share_one_schedule(
    rate_connections: tuple[RedisConnection, RedisConnection], rate_redis_prefix: str
) -> None:
    first, first_guard = redis_budget(rate_connections[0], rate_redis_prefix)
    second, second_guard = redis_budget(rate_connections[1], rate_redis_prefix)

    waits = []
    for budget in (first, second) * 3:
        reservation = await budget.reserve(DEPLOYMENT, ONE_PER_SECOND, 0, max_wait=60)
        waits.append(reservation.wait)

    # One queue at one request per second, whichever instance asks.
    assert waits == [pytest.approx(second, abs=0.05) for second in range(6)]
    assert first_guard.outages == second_guard.outages == 0


async def test_redis_state_is_one_expiring_key_per_deployment(
    rate_connections: tuple[RedisConnection, RedisConnection],
    rate_redis_prefix: str,
    inspect_redis: Redis,
) -> None:
    budget, _ = redis_budget(rate_connections[0], rate_redis_prefix)
    client = inspect_redis

    # Unlimited requests touch nothing.
    await budget.reserve(DEPLOYMENT, RateLimits(adaptive=False), 100, max_wait=0)
    assert [key async for key in client.scan_iter(match=f"{rate_redis_prefix}*")] == []

    await budget.reserve(DEPLOYMENT, ONE_PER_SECOND, 0, max_wait=0)
    await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)
    keys = [key async for key in client.scan_iter(match=f"{rate_redis_prefix}*")]
    assert keys == [f"{rate_redis_prefix}{DEPLOYMENT}".encode()]
    # Long enough to remember the learned rate for its minute, short enough to go away.
    assert 60_000 < await client.pttl(keys[0]) <= 120_000


async def test_redis_forgets_the_learned_rate_a_minute_after_the_last_429(
    rate_connections: tuple[RedisConnection, RedisConnection],
    rate_redis_prefix: str,
    inspect_redis: Redis,
) -> None:
    budget, _ = redis_budget(rate_connections[0], rate_redis_prefix)
    client = inspect_redis
    env = RateEnv(budget, asyncio.sleep, tolerance=0.05, kind="redis")
    await learn_rate(env, 5)
    assert (await budget.snapshot(DEPLOYMENT))["adaptive_rate"] is not None

    # Waiting a minute of server time is too slow for a test: age the stored 429 instead.
    key = f"{rate_redis_prefix}{DEPLOYMENT}"
    stored = await client.hget(key, "l429")
    assert stored is not None
    last_429 = float(stored)
    await client.hset(key, "l429", repr(last_429 - 61.0))

    assert (await budget.snapshot(DEPLOYMENT))["adaptive_rate"] is None
    reservations = [await budget.reserve(DEPLOYMENT, ADAPTIVE, 0, max_wait=0) for _ in range(5)]
    assert [r.wait for r in reservations] == [0.0] * 5


async def test_redis_fails_open_to_local_state_and_recovers(
    rate_redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(target_port=6379)
    await proxy.start()
    connection = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0")
    clock = FakeClock()
    guard = FailOpenGuard("rate budget", clock.now, retry_seconds=1.0)
    budget = RedisRateBudget(
        connection.client,
        fallback=MemoryRateBudget(clock),
        guard=guard,
        prefix=rate_redis_prefix,
    )
    # One request per 10 s, so the Redis and the local schedule are told apart by their waits.
    limits = RateLimits(rpm=6, adaptive=False)
    try:
        assert (await budget.reserve(DEPLOYMENT, limits, 0, max_wait=60)).wait == 0.0

        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            local = [await budget.reserve(DEPLOYMENT, limits, 0, max_wait=60) for _ in range(2)]
        # Served, from this instance's own schedule (which starts empty).
        assert [r.granted for r in local] == [True, True]
        assert [r.wait for r in local] == [0.0, 10.0]
        assert guard.outages == 1
        assert guard.down
        assert "Redis unavailable" in caplog.text

        await proxy.start()
        clock.advance(1.0)
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            shared = await budget.reserve(DEPLOYMENT, limits, 0, max_wait=60)
        # Back on the shared schedule: the second slot of Redis's queue, 10 s after the first.
        assert shared.granted
        assert 5.0 < shared.wait <= 10.0
        assert not guard.down
        assert guard.outages == 1
        assert "Redis is back" in caplog.text
    finally:
        await proxy.cut()
        await connection.aclose()
