"""The all-clear view: Redis stores answer "closed" and "nothing to enforce" from memory.

Two "instances" are two stores on two Redis connections sharing one key prefix. Each
instance's ``FakeClock`` drives its view and its fail-open guard; Redis times the
stores' scripts with its own clock, so anything Redis must measure (an open period, a
learned rate) really waits, briefly, and waits are compared with a tolerance.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from seawall.resilience.breaker_redis import RedisBreakerStore
from seawall.resilience.circuit_breaker import BreakerSettings, BreakerState, MemoryBreakerStore
from seawall.resilience.clear_view import FRESH_SECONDS, ClearView
from seawall.resilience.rate_budget import MemoryRateBudget, RateLimits
from seawall.resilience.rate_budget_redis import RedisRateBudget
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_keys import BREAKER, RATE
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.tcp_proxy import TcpProxy

REDIS_PORT = 6379
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
DEPLOYMENT = "openai/gpt-4o-mini@eastus"
# Past the view's window on an instance's fake clock.
STALE = FRESH_SECONDS * 1.5
# Every test is over in a few seconds; a hang fails it instead of the run.
HANG_GUARD_S = 10.0
# Time that passes on Redis's clock between two calls of one test.
TOLERANCE = 0.05

# QUICK's trip (four outcomes, half of them failures, in a long window), but open for
# longer than any test runs: Redis's own clock times the open period.
TRIPS = BreakerSettings(
    window_seconds=60.0,
    min_requests=4,
    failure_rate=0.5,
    open_seconds=30.0,
    max_open_seconds=60.0,
    half_open_probes=2,
)
ADAPTIVE = RateLimits()
ONE_PER_SECOND = RateLimits(rpm=60, adaptive=False)
HUNDRED_TOKENS_PER_SECOND = RateLimits(tpm=6000, adaptive=False)
PARKING = RateLimits(adaptive=False, park_after_seconds=10.0)


def near(expected: float) -> object:
    """``expected`` up to the time that passes on Redis between calls."""
    return pytest.approx(expected, abs=TOLERANCE)


@pytest.fixture
async def connections() -> AsyncIterator[tuple[RedisConnection, RedisConnection]]:
    """Two independent clients, as two Seawall instances would have."""
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()


@pytest.fixture
async def breaker_prefix() -> AsyncIterator[str]:
    """A breaker key prefix of this test's own, emptied afterwards."""
    prefix = f"{BREAKER}test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture
async def rate_prefix() -> AsyncIterator[str]:
    """A rate budget key prefix of this test's own, emptied afterwards."""
    prefix = f"{RATE}test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(prefix)


def breaker_instance(
    connection: RedisConnection, prefix: str, clock: FakeClock
) -> tuple[RedisBreakerStore, FailOpenGuard]:
    """A breaker store as ``shared_state`` builds it, on ``clock``, and its guard."""
    guard = FailOpenGuard("breakers", clock.now, retry_seconds=1.0)
    store = RedisBreakerStore(
        connection.client,
        fallback=MemoryBreakerStore(clock),
        guard=guard,
        view=ClearView(clock.now),
        prefix=prefix,
    )
    return store, guard


def rate_instance(
    connection: RedisConnection, prefix: str, clock: FakeClock
) -> tuple[RedisRateBudget, FailOpenGuard]:
    """A rate budget as ``shared_state`` builds it, on ``clock``, and its guard."""
    guard = FailOpenGuard("rate budget", clock.now, retry_seconds=1.0)
    budget = RedisRateBudget(
        connection.client,
        fallback=MemoryRateBudget(clock),
        guard=guard,
        view=ClearView(clock.now),
        prefix=prefix,
    )
    return budget, guard


async def record_all(store: RedisBreakerStore, outcomes: str) -> list[BreakerState]:
    """Record ``outcomes`` ("s" success, "f" failure) in order; the state after each."""
    return [await store.record(DEPLOYMENT, TRIPS, success=o == "s") for o in outcomes]


async def waits(budget: RedisRateBudget, count: int, limits: RateLimits = ADAPTIVE) -> list[float]:
    """The waits of ``count`` reservations in a row, each allowed to wait a minute."""
    result = []
    for _ in range(count):
        reservation = await budget.reserve(DEPLOYMENT, limits, 0, max_wait=60)
        assert reservation.granted
        result.append(reservation.wait)
    return result


async def learn_rate(budget: RedisRateBudget, per_second: int) -> None:
    """Teach Redis ``per_second``: a second of successful traffic, then a 429.

    Redis learns only from a second of its own time, so this really waits a second.
    """
    await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=False)
    await asyncio.sleep(1.0)
    for _ in range(per_second - 1):
        await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=False)
    await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)


# --- ClearView ---------------------------------------------------------------------


def test_a_deployment_is_clear_only_once_seen_clear_and_for_its_window() -> None:
    clock = FakeClock()
    view = ClearView(clock.now, fresh_seconds=2.0)
    assert not view.clear(DEPLOYMENT)

    view.saw(DEPLOYMENT, True)
    assert view.clear(DEPLOYMENT)
    assert not view.clear("other")
    clock.advance(1.9)
    assert view.clear(DEPLOYMENT)
    clock.advance(0.2)
    assert not view.clear(DEPLOYMENT)


def test_each_all_clear_restarts_the_window() -> None:
    clock = FakeClock()
    view = ClearView(clock.now, fresh_seconds=2.0)
    view.saw(DEPLOYMENT, True)
    clock.advance(1.5)
    view.saw(DEPLOYMENT, True)
    clock.advance(1.5)

    assert view.clear(DEPLOYMENT)


def test_anything_but_all_clear_is_forgotten_at_once() -> None:
    clock = FakeClock()
    view = ClearView(clock.now, fresh_seconds=2.0)
    view.saw("never-seen", False)  # nothing to forget: no error
    view.saw(DEPLOYMENT, True)

    view.saw(DEPLOYMENT, False)

    assert not view.clear(DEPLOYMENT)


def test_the_default_window_is_fresh_seconds() -> None:
    clock = FakeClock()
    view = ClearView(clock.now)
    view.saw(DEPLOYMENT, True)
    clock.advance(FRESH_SECONDS * 0.9)
    assert view.clear(DEPLOYMENT)
    clock.advance(FRESH_SECONDS * 0.2)
    assert not view.clear(DEPLOYMENT)


# --- Circuit breakers --------------------------------------------------------------


async def test_a_breaker_tripped_elsewhere_reaches_an_instance_when_its_view_goes_stale(
    connections: tuple[RedisConnection, RedisConnection], breaker_prefix: str
) -> None:
    clock = FakeClock()
    one, _ = breaker_instance(connections[0], breaker_prefix, FakeClock())
    other, guard = breaker_instance(connections[1], breaker_prefix, clock)
    async with asyncio.timeout(HANG_GUARD_S):
        first = await other.allow(DEPLOYMENT, TRIPS)
        assert (first.allowed, first.state) == (True, BreakerState.CLOSED)

        assert (await record_all(one, "ffff"))[-1] is BreakerState.OPEN
        clock.advance(FRESH_SECONDS / 2)
        stale = await other.allow(DEPLOYMENT, TRIPS)
        # By design: the other instance learns within its window, not at once.
        assert (stale.allowed, stale.state) == (True, BreakerState.CLOSED)

        clock.advance(FRESH_SECONDS)
        fresh = await other.allow(DEPLOYMENT, TRIPS)

    assert (fresh.allowed, fresh.state) == (False, BreakerState.OPEN)
    assert 0 < fresh.retry_in <= TRIPS.open_seconds
    assert guard.outages == 0


async def test_an_instance_that_trips_the_breaker_refuses_its_next_call_at_once(
    connections: tuple[RedisConnection, RedisConnection], breaker_prefix: str
) -> None:
    store, guard = breaker_instance(connections[0], breaker_prefix, FakeClock())
    async with asyncio.timeout(HANG_GUARD_S):
        assert (await store.allow(DEPLOYMENT, TRIPS)).allowed

        states = await record_all(store, "ffff")
        permit = await store.allow(DEPLOYMENT, TRIPS)  # no time has passed for the view

    assert states == [BreakerState.CLOSED] * 3 + [BreakerState.OPEN]
    assert (permit.allowed, permit.state) == (False, BreakerState.OPEN)
    assert guard.outages == 0


async def test_a_breaker_found_closed_needs_no_redis_until_the_view_goes_stale(
    breaker_prefix: str,
) -> None:
    proxy = TcpProxy(REDIS_PORT)
    await proxy.start()
    proxied = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0")
    clock = FakeClock()
    store, guard = breaker_instance(proxied, breaker_prefix, clock)
    try:
        async with asyncio.timeout(HANG_GUARD_S):
            assert (await store.allow(DEPLOYMENT, TRIPS)).allowed
            await proxy.cut()

            clock.advance(FRESH_SECONDS / 2)
            within = await store.allow(DEPLOYMENT, TRIPS)
            assert (within.allowed, within.state) == (True, BreakerState.CLOSED)
            assert guard.outages == 0  # Redis was not asked

            clock.advance(FRESH_SECONDS)
            after = await store.allow(DEPLOYMENT, TRIPS)

        # Asked, found Redis gone, and failed open to this instance's memory.
        assert guard.outages == 1
        assert (after.allowed, after.state) == (True, BreakerState.CLOSED)
    finally:
        await proxy.cut()
        await proxied.aclose()


# --- Provider rate budgets ---------------------------------------------------------


async def test_a_rate_learned_elsewhere_reaches_an_instance_when_its_view_goes_stale(
    connections: tuple[RedisConnection, RedisConnection], rate_prefix: str
) -> None:
    clock = FakeClock()
    one, _ = rate_instance(connections[0], rate_prefix, FakeClock())
    other, guard = rate_instance(connections[1], rate_prefix, clock)
    async with asyncio.timeout(HANG_GUARD_S):
        assert await waits(other, 1) == [0.0]

        await learn_rate(one, 5)
        assert (await one.snapshot(DEPLOYMENT))["adaptive_rate"] == pytest.approx(5.0, rel=0.1)
        # By design: within its window the other instance still sends at once.
        assert await waits(other, 3) == [0.0] * 3

        clock.advance(STALE)
        spaced = await waits(other, 3)

    # Back on the shared schedule, at the learned five per second.
    assert spaced == [near(0.0), near(0.2), near(0.4)]
    assert guard.outages == 0


async def test_an_instance_that_gets_a_429_asks_redis_from_its_next_request(
    connections: tuple[RedisConnection, RedisConnection], rate_prefix: str
) -> None:
    budget, guard = rate_instance(connections[0], rate_prefix, FakeClock())
    async with asyncio.timeout(HANG_GUARD_S):
        assert await waits(budget, 1) == [0.0]

        await learn_rate(budget, 5)  # no time passes for the view
        spaced = await waits(budget, 2)

    assert spaced == [near(0.0), near(0.2)]
    assert spaced[1] > 0
    assert guard.outages == 0


async def test_an_instance_parked_by_its_own_429_refuses_its_next_request(
    connections: tuple[RedisConnection, RedisConnection], rate_prefix: str
) -> None:
    budget, _ = rate_instance(connections[0], rate_prefix, FakeClock())
    async with asyncio.timeout(HANG_GUARD_S):
        assert await waits(budget, 1, PARKING) == [0.0]

        await budget.observe(DEPLOYMENT, PARKING, rate_limited=True, retry_after=30.0)
        refused = await budget.reserve(DEPLOYMENT, PARKING, 0, max_wait=5)

    assert (refused.granted, refused.parked) == (False, True)
    assert refused.wait == near(30.0)


async def test_a_reservation_in_flight_does_not_undo_the_instances_own_429(
    connections: tuple[RedisConnection, RedisConnection], rate_prefix: str
) -> None:
    clock = FakeClock()
    budget, _ = rate_instance(connections[0], rate_prefix, clock)
    async with asyncio.timeout(HANG_GUARD_S):
        await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=False)
        await asyncio.sleep(1.0)
        for _ in range(4):
            await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=False)

        # A request's reservation is on the wire (Redis answers "all clear": nothing
        # is learned yet) when another request's 429 comes back and teaches a rate.
        in_flight = asyncio.create_task(budget.reserve(DEPLOYMENT, ADAPTIVE, 0, max_wait=60))
        await asyncio.sleep(0)
        await budget.observe(DEPLOYMENT, ADAPTIVE, rate_limited=True)
        assert (await in_flight).wait == 0.0
        assert (await budget.snapshot(DEPLOYMENT))["adaptive_rate"] is not None

        spaced = await waits(budget, 2)  # no time passes for the view

    # The older "all clear" must not hide this instance's own, newer 429.
    assert spaced == [near(0.0), near(0.2)]


@pytest.mark.parametrize(
    ("limits", "tokens"),
    [(ONE_PER_SECOND, 0), (HUNDRED_TOKENS_PER_SECOND, 100)],
    ids=["rpm", "tpm"],
)
async def test_configured_limits_are_never_answered_from_the_view(
    connections: tuple[RedisConnection, RedisConnection],
    rate_prefix: str,
    limits: RateLimits,
    tokens: int,
) -> None:
    one, _ = rate_instance(connections[0], rate_prefix, FakeClock())
    other, _ = rate_instance(connections[1], rate_prefix, FakeClock())
    result = []
    async with asyncio.timeout(HANG_GUARD_S):
        for budget in (one, other) * 2:
            reservation = await budget.reserve(DEPLOYMENT, limits, tokens, max_wait=60)
            assert reservation.granted
            result.append(reservation.wait)

    # One queue at one request (or 100 tokens) per second, whichever instance asks.
    assert result == [near(second) for second in range(4)]
