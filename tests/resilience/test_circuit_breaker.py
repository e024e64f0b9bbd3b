"""Circuit breakers: the same contract in memory and in Redis, and Redis shared and failing open.

The Redis store reads Redis's clock, so its variant really waits; settings keep every
period short, and assertions only rely on time having passed at least as long as asked.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from seawall.resilience.breaker_redis import RedisBreakerStore
from seawall.resilience.circuit_breaker import (
    BreakerSettings,
    BreakerState,
    BreakerStore,
    MemoryBreakerStore,
)
from seawall.resilience.clock import Clock, SystemClock
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_keys import BREAKER
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.tcp_proxy import TcpProxy

REDIS_PORT = 6379
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
DEPLOYMENT = "openai/gpt-4o-mini"

# Short periods so the Redis variant waits little; a long window so nothing slides by accident.
# Slack for float arithmetic on clock readings.
EPSILON = 1e-6
QUICK = BreakerSettings(
    window_seconds=60.0,
    min_requests=4,
    failure_rate=0.5,
    open_seconds=0.3,
    max_open_seconds=10.0,
    half_open_probes=2,
)


@dataclass
class Breakers:
    """A store under test and how to let time pass for it."""

    store: BreakerStore
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture
async def breaker_redis() -> AsyncIterator[tuple[MultiplexedRedis, str]]:
    """A client to the real Redis and a private key prefix, emptied afterwards."""
    connection = RedisConnection(REDIS_URL)
    prefix = f"{BREAKER}test:{secrets.token_hex(8)}:"
    yield connection.client, prefix
    await delete_prefix(prefix)
    await connection.aclose()


def redis_store(
    client: MultiplexedRedis, prefix: str, clock: FakeClock | None = None
) -> RedisBreakerStore:
    """A Redis store as an instance builds it (``clock`` drives its fallback and guard)."""
    time: Clock = clock or SystemClock()
    return RedisBreakerStore(
        client,
        fallback=MemoryBreakerStore(time),
        guard=FailOpenGuard("breakers", time.now, retry_seconds=1.0),
        prefix=prefix,
    )


@pytest.fixture(params=["memory", "redis"])
def breakers(request: pytest.FixtureRequest) -> Breakers:
    """Each store, with ``advance`` moving a fake clock (memory) or really waiting (Redis).

    Sync, so that it can resolve the async Redis fixture only for the Redis variant.
    """
    if request.param == "memory":
        clock = FakeClock()

        async def advance_clock(seconds: float) -> None:
            clock.advance(seconds)

        return Breakers(MemoryBreakerStore(clock), advance_clock)
    client, prefix = request.getfixturevalue("breaker_redis")

    async def wait(seconds: float) -> None:
        await SystemClock().sleep(seconds)

    return Breakers(redis_store(client, prefix), wait)


async def record_all(
    store: BreakerStore, outcomes: str, settings: BreakerSettings = QUICK
) -> list[BreakerState]:
    """Record ``outcomes`` ("s" success, "f" failure) in order; the state after each."""
    return [
        await store.record(DEPLOYMENT, settings, success=outcome == "s") for outcome in outcomes
    ]


async def trip(breakers: Breakers) -> None:
    """Open the breaker on ``DEPLOYMENT`` with QUICK settings."""
    assert (await record_all(breakers.store, "ffff"))[-1] is BreakerState.OPEN


async def test_a_failure_rate_opens_it_without_consecutive_failures(breakers: Breakers) -> None:
    settings = BreakerSettings(window_seconds=60.0, min_requests=10, failure_rate=0.5)
    assert set(await record_all(breakers.store, "sf" * 4 + "s", settings)) == {BreakerState.CLOSED}

    assert await breakers.store.record(DEPLOYMENT, settings, success=False) is BreakerState.OPEN
    permit = await breakers.store.allow(DEPLOYMENT, settings)
    assert not permit.allowed
    assert permit.state is BreakerState.OPEN


async def test_mixed_traffic_below_the_rate_stays_closed(breakers: Breakers) -> None:
    settings = BreakerSettings(window_seconds=60.0, min_requests=10, failure_rate=0.5)
    # 40% failures in runs of three that a consecutive-failure breaker would trip on.
    states = await record_all(breakers.store, "ssssfffssf" * 3, settings)

    assert set(states) == {BreakerState.CLOSED}
    assert (await breakers.store.allow(DEPLOYMENT, settings)).allowed


async def test_fewer_outcomes_than_min_requests_never_open_it(breakers: Breakers) -> None:
    settings = BreakerSettings(window_seconds=60.0, min_requests=10, failure_rate=0.5)
    assert set(await record_all(breakers.store, "f" * 9, settings)) == {BreakerState.CLOSED}
    assert await breakers.store.state(DEPLOYMENT, settings) is BreakerState.CLOSED

    assert await breakers.store.record(DEPLOYMENT, settings, success=False) is BreakerState.OPEN


async def test_failures_older_than_the_window_are_forgotten(breakers: Breakers) -> None:
    settings = BreakerSettings(window_seconds=0.5, min_requests=4, failure_rate=0.5)
    await record_all(breakers.store, "fff", settings)

    await breakers.advance(0.6)  # the window plus its last bucket

    assert await breakers.store.record(DEPLOYMENT, settings, success=False) is BreakerState.CLOSED
    assert (await record_all(breakers.store, "fff", settings))[-1] is BreakerState.OPEN


async def test_an_open_breaker_refuses_and_says_when_to_retry(breakers: Breakers) -> None:
    await trip(breakers)

    permit = await breakers.store.allow(DEPLOYMENT, QUICK)

    assert not permit.allowed
    assert permit.state is BreakerState.OPEN
    assert not permit.probe
    assert 0 < permit.retry_in <= QUICK.open_seconds + EPSILON
    assert await breakers.store.state(DEPLOYMENT, QUICK) is BreakerState.OPEN


async def test_outcomes_of_calls_started_before_it_opened_are_ignored(breakers: Breakers) -> None:
    await trip(breakers)

    assert set(await record_all(breakers.store, "ssss")) == {BreakerState.OPEN}
    await breakers.advance(QUICK.open_seconds + 0.05)
    assert (await breakers.store.allow(DEPLOYMENT, QUICK)).probe
    assert set(await record_all(breakers.store, "ffff")) == {BreakerState.HALF_OPEN}


async def test_after_the_open_period_only_probes_go_through(breakers: Breakers) -> None:
    await trip(breakers)
    await breakers.advance(QUICK.open_seconds + 0.05)
    assert await breakers.store.state(DEPLOYMENT, QUICK) is BreakerState.HALF_OPEN

    permits = [await breakers.store.allow(DEPLOYMENT, QUICK) for _ in range(4)]

    assert [(p.allowed, p.probe) for p in permits] == [(True, True)] * 2 + [(False, False)] * 2
    assert {p.state for p in permits} == {BreakerState.HALF_OPEN}
    assert 0 < permits[-1].retry_in <= QUICK.open_seconds + EPSILON


async def test_probes_that_all_succeed_close_it_with_a_clean_slate(breakers: Breakers) -> None:
    store = breakers.store
    await trip(breakers)
    await breakers.advance(QUICK.open_seconds + 0.05)

    for expected in (BreakerState.HALF_OPEN, BreakerState.CLOSED):
        assert (await store.allow(DEPLOYMENT, QUICK)).probe
        assert await store.record(DEPLOYMENT, QUICK, success=True, probe=True) is expected

    permit = await store.allow(DEPLOYMENT, QUICK)
    assert (permit.allowed, permit.state) == (True, BreakerState.CLOSED)
    # The failures that opened it are gone: three more are below min_requests again.
    assert set(await record_all(store, "fff")) == {BreakerState.CLOSED}


async def test_a_failed_probe_reopens_it_for_double_the_period(breakers: Breakers) -> None:
    store = breakers.store
    await trip(breakers)
    await breakers.advance(QUICK.open_seconds + 0.05)
    assert (await store.allow(DEPLOYMENT, QUICK)).probe

    assert await store.record(DEPLOYMENT, QUICK, success=False, probe=True) is BreakerState.OPEN

    permit = await store.allow(DEPLOYMENT, QUICK)
    assert not permit.allowed
    assert QUICK.open_seconds < permit.retry_in <= 2 * QUICK.open_seconds + EPSILON
    await breakers.advance(QUICK.open_seconds + 0.05)
    assert not (await store.allow(DEPLOYMENT, QUICK)).allowed
    await breakers.advance(QUICK.open_seconds)
    assert (await store.allow(DEPLOYMENT, QUICK)).probe

    # Closing resets the period: the next trip opens it for open_seconds again.
    await store.record(DEPLOYMENT, QUICK, success=True, probe=True)
    assert (await store.allow(DEPLOYMENT, QUICK)).probe
    assert await store.record(DEPLOYMENT, QUICK, success=True, probe=True) is BreakerState.CLOSED
    await trip(breakers)
    assert (await store.allow(DEPLOYMENT, QUICK)).retry_in <= QUICK.open_seconds + EPSILON


async def test_the_open_period_stops_doubling_at_its_cap(breakers: Breakers) -> None:
    settings = BreakerSettings(
        window_seconds=60.0, min_requests=4, open_seconds=0.2, max_open_seconds=0.3
    )
    store = breakers.store
    await record_all(store, "ffff", settings)
    for _ in range(2):
        await breakers.advance(0.35)
        assert (await store.allow(DEPLOYMENT, settings)).probe
        await store.record(DEPLOYMENT, settings, success=False, probe=True)
        assert (await store.allow(DEPLOYMENT, settings)).retry_in <= 0.3 + EPSILON

    await breakers.advance(0.35)
    assert (await store.allow(DEPLOYMENT, settings)).probe


async def test_probes_never_reported_free_their_slots(breakers: Breakers) -> None:
    await trip(breakers)
    await breakers.advance(QUICK.open_seconds + 0.05)
    for _ in range(QUICK.half_open_probes):
        assert (await breakers.store.allow(DEPLOYMENT, QUICK)).probe
    assert not (await breakers.store.allow(DEPLOYMENT, QUICK)).allowed

    await breakers.advance(QUICK.open_seconds + 0.05)  # their callers were cancelled

    assert (await breakers.store.allow(DEPLOYMENT, QUICK)).probe


async def test_deployments_have_breakers_of_their_own(breakers: Breakers) -> None:
    await trip(breakers)

    permit = await breakers.store.allow("anthropic/claude", QUICK)

    assert (permit.allowed, permit.state) == (True, BreakerState.CLOSED)


async def test_two_instances_share_one_breaker_through_redis(
    breaker_redis: tuple[MultiplexedRedis, str],
) -> None:
    _, prefix = breaker_redis
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    try:
        one, other = redis_store(first.client, prefix), redis_store(second.client, prefix)
        await record_all(one, "ff")
        await record_all(other, "ff")  # the window is shared: four failures in all

        permit = await other.allow(DEPLOYMENT, QUICK)

        assert (permit.allowed, permit.state) == (False, BreakerState.OPEN)
        assert await one.state(DEPLOYMENT, QUICK) is BreakerState.OPEN
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_keys_expire_and_closing_removes_them(
    breaker_redis: tuple[MultiplexedRedis, str], inspect_redis: Redis
) -> None:
    shared, prefix = breaker_redis
    client = inspect_redis
    key = f"{prefix}{DEPLOYMENT}"
    store = redis_store(shared, prefix)
    await record_all(store, "sf")
    assert 0 < await client.pttl(key) <= QUICK.window_seconds * 1.1 * 1000

    await record_all(store, "ff")
    assert 0 < await client.pttl(key) <= 2 * QUICK.max_open_seconds * 1000

    await SystemClock().sleep(QUICK.open_seconds + 0.05)
    for _ in range(QUICK.half_open_probes):
        assert (await store.allow(DEPLOYMENT, QUICK)).probe
        await store.record(DEPLOYMENT, QUICK, success=True, probe=True)
    assert await client.exists(key) == 0


async def test_redis_lost_fails_open_to_memory_and_comes_back(
    breaker_redis: tuple[MultiplexedRedis, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, prefix = breaker_redis
    proxy = TcpProxy(REDIS_PORT)
    await proxy.start()
    proxied = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0")
    clock = FakeClock()
    guard = FailOpenGuard("breakers", clock.now, retry_seconds=1.0)
    instance = RedisBreakerStore(
        proxied.client, fallback=MemoryBreakerStore(clock), guard=guard, prefix=prefix
    )
    observer = redis_store(client, prefix)
    try:
        assert (await instance.allow(DEPLOYMENT, QUICK)).allowed
        await proxy.cut()

        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            permit = await instance.allow(DEPLOYMENT, QUICK)
            # While Redis is away the instance decides alone, from its own memory.
            await record_all(instance, "ffff")

        assert (permit.allowed, permit.state) == (True, BreakerState.CLOSED)
        assert guard.outages == 1
        assert "Redis unavailable" in caplog.text
        assert not (await instance.allow(DEPLOYMENT, QUICK)).allowed
        assert await observer.state(DEPLOYMENT, QUICK) is BreakerState.CLOSED

        await proxy.start()
        clock.advance(1.0)  # the guard tries Redis again after retry_seconds
        await record_all(instance, "ffff")

        assert not guard.down
        assert await observer.state(DEPLOYMENT, QUICK) is BreakerState.OPEN
    finally:
        await proxy.cut()
        await proxied.aclose()
