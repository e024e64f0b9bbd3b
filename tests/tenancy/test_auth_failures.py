"""Failed authentication attempts are limited per IP, in memory and shared through Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from seawall.errors import RateLimited
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_keys import AUTH_FAILURES
from seawall.tenancy.auth_failures import AuthFailureLimiter, auth_failure_limiter
from seawall.tenancy.client_limits import MemoryClientLimits
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.tenancy.limit_stores import REDIS_URL, redis_store, unique_prefix

ATTACKER = "198.51.100.9"
NEIGHBOUR = "198.51.100.10"


@dataclass
class AuthEnv:
    """A limiter allowing 5 failures a minute, and the clock it runs on."""

    limiter: AuthFailureLimiter
    clock: FakeClock


@pytest.fixture
async def auth_prefix() -> AsyncIterator[str]:
    """A fresh key prefix, with every key under it deleted after the test."""
    prefix = unique_prefix(AUTH_FAILURES)
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, auth_prefix: str) -> AsyncIterator[AuthEnv]:
    """A limiter on each store, on a fake clock."""
    clock = FakeClock()
    if request.param == "memory":
        yield AuthEnv(AuthFailureLimiter(MemoryClientLimits(clock), clock, max_failures=5), clock)
        return
    connection = RedisConnection(REDIS_URL)
    store, guard = redis_store(connection.client, auth_prefix, clock)
    try:
        yield AuthEnv(AuthFailureLimiter(store, clock, max_failures=5), clock)
        assert guard.outages == 0
    finally:
        await connection.aclose()


async def fail(limiter: AuthFailureLimiter, ip: str | None, times: int) -> None:
    """``times`` attempts that pass the check and then fail authentication."""
    for _ in range(times):
        limiter.check(ip)
        await limiter.failed(ip)


async def test_an_ip_is_refused_after_too_many_failures(env: AuthEnv) -> None:
    await fail(env.limiter, ATTACKER, 5)

    with pytest.raises(RateLimited) as refused:
        env.limiter.check(ATTACKER)
    error = refused.value
    assert error.status == 429
    assert error.code == "too_many_authentication_failures"
    # One more attempt per 60/5 seconds.
    assert error.retry_after == pytest.approx(12.0)
    assert error.headers()["retry-after"] == "12"
    assert "Too many failed authentication attempts" in error.message
    assert env.limiter.refused == 1


async def test_failures_below_the_limit_are_not_refused(env: AuthEnv) -> None:
    await fail(env.limiter, ATTACKER, 4)
    env.limiter.check(ATTACKER)


async def test_the_ip_may_try_again_once_failures_age(env: AuthEnv) -> None:
    await fail(env.limiter, ATTACKER, 5)
    env.clock.advance(12.0)
    await fail(env.limiter, ATTACKER, 1)
    with pytest.raises(RateLimited):
        env.limiter.check(ATTACKER)

    env.clock.advance(60.0)
    await fail(env.limiter, ATTACKER, 5)


async def test_other_addresses_and_unknown_ones_are_not_affected(env: AuthEnv) -> None:
    await fail(env.limiter, ATTACKER, 5)
    env.limiter.check(NEIGHBOUR)
    # No address known (no peer): never limited.
    await fail(env.limiter, None, 20)


async def test_two_instances_share_the_failure_count(auth_prefix: str) -> None:
    first_connection, second_connection = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    clock = FakeClock()
    try:
        first = AuthFailureLimiter(
            redis_store(first_connection.client, auth_prefix, clock)[0], clock, max_failures=4
        )
        second = AuthFailureLimiter(
            redis_store(second_connection.client, auth_prefix, clock)[0], clock, max_failures=4
        )
        await fail(first, ATTACKER, 2)
        await fail(second, ATTACKER, 2)
        with pytest.raises(RateLimited):
            second.check(ATTACKER)
        # The first instance learns from the shared count at the IP's next failure there.
        first.check(ATTACKER)
        with pytest.raises(RateLimited):
            await first.failed(ATTACKER)
        with pytest.raises(RateLimited):
            first.check(ATTACKER)
    finally:
        await first_connection.aclose()
        await second_connection.aclose()


async def test_the_embedded_default_keeps_failures_in_memory() -> None:
    clock = FakeClock()
    limiter = auth_failure_limiter(clock, None, max_failures=2, period_seconds=10.0)
    await fail(limiter, ATTACKER, 2)
    with pytest.raises(RateLimited) as refused:
        limiter.check(ATTACKER)
    assert refused.value.retry_after == pytest.approx(5.0)
