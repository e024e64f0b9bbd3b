"""Per-user strikes: one contract on the in-memory and the Redis store, then Redis only.

Both stores run on a ``FakeClock``'s time (the Redis store sends it to its script), so
windows and blocks pass without sleeping. The Redis-only tests at the end use two
instances on one Redis, the key's expiry, and a cut connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from seawall.guard.strikes import MemoryStrikes, StrikePolicy, StrikeState, StrikeStore
from seawall.guard.strikes_redis import GUARD_STRIKES, RedisStrikes, strike_store
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.tcp_proxy import TcpProxy

REDIS_PORT = 6379
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
START = 1_700_000_000.0
POLICY = StrikePolicy(
    max_strikes=3,
    window_seconds=600.0,
    block_seconds=(900.0, 3600.0, 86400.0),
    forget_blocks_seconds=7 * 86400.0,
)


@dataclass
class StrikeEnv:
    """A store under test and the clock it runs on."""

    store: StrikeStore
    clock: FakeClock

    async def strikes(self, count: int, tenant: str = "acme", user: str = "alice") -> StrikeState:
        """``count`` strikes one after another; the last state."""
        state = None
        for _ in range(count):
            state = await self.store.add(tenant, user)
        assert state is not None
        return state


@pytest.fixture
async def strike_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, cleared afterwards."""
    prefix = f"{GUARD_STRIKES}test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(prefix)


def redis_strikes(
    client: MultiplexedRedis, prefix: str, clock: FakeClock, policy: StrikePolicy = POLICY
) -> RedisStrikes:
    """A Redis store on ``clock``'s time, failing open to memory on the same clock."""
    return RedisStrikes(
        client,
        policy=policy,
        fallback=MemoryStrikes(policy, wall_clock=clock.now),
        guard=FailOpenGuard("guard strikes", clock.now, retry_seconds=1.0),
        prefix=prefix,
        wall_clock=clock.now,
    )


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, strike_prefix: str) -> AsyncIterator[StrikeEnv]:
    """Each store, empty, on a fake wall clock."""
    clock = FakeClock(start=START)
    if request.param == "memory":
        yield StrikeEnv(MemoryStrikes(POLICY, wall_clock=clock.now), clock)
        return
    connection = RedisConnection(REDIS_URL)
    store = redis_strikes(connection.client, strike_prefix, clock)
    try:
        yield StrikeEnv(store, clock)
        # Every answer came from Redis, not from the fail-open fallback.
        assert store.guard.outages == 0
    finally:
        await connection.aclose()


# --- Blocks ---------------------------------------------------------------------------


async def test_a_user_is_blocked_at_the_third_strike_for_fifteen_minutes(env: StrikeEnv) -> None:
    first = await env.store.add("acme", "alice")
    second = await env.store.add("acme", "alice")
    assert (first.strikes, first.blocked, second.strikes, second.blocked) == (1, False, 2, False)

    third = await env.store.add("acme", "alice")
    assert third.blocked and third.block_started
    assert third.blocked_until == pytest.approx(START + 900.0)
    assert third.retry_after == pytest.approx(900.0)
    # The strikes behind the block are used up by it.
    assert (third.strikes, third.blocks) == (0, 1)

    env.clock.advance(899.0)
    still = await env.store.state("acme", "alice")
    assert still.blocked and still.retry_after == pytest.approx(1.0)
    assert not still.block_started

    env.clock.advance(1.0)
    over = await env.store.state("acme", "alice")
    assert not over.blocked and over.blocked_until is None and over.blocks == 1


async def test_strikes_older_than_the_window_are_forgotten(env: StrikeEnv) -> None:
    await env.strikes(2)
    env.clock.advance(600.0)
    assert (await env.store.state("acme", "alice")).strikes == 0
    state = await env.strikes(2)
    assert (state.strikes, state.blocked) == (2, False)


async def test_each_further_block_lasts_longer_and_the_last_length_repeats(
    env: StrikeEnv,
) -> None:
    lengths = []
    for _ in range(4):
        blocked = await env.strikes(3)
        assert blocked.block_started
        lengths.append(blocked.retry_after)
        env.clock.advance(blocked.retry_after)
    assert lengths == pytest.approx([900.0, 3600.0, 86400.0, 86400.0])
    assert (await env.store.state("acme", "alice")).blocks == 4


async def test_a_user_quiet_for_a_week_after_a_block_starts_over(env: StrikeEnv) -> None:
    await env.strikes(3)
    env.clock.advance(900.0)
    second = await env.strikes(3)
    assert second.retry_after == pytest.approx(3600.0)

    env.clock.advance(3600.0 + 7 * 86400.0)
    assert (await env.store.state("acme", "alice")).blocks == 0
    again = await env.strikes(3)
    assert again.retry_after == pytest.approx(900.0)


async def test_several_strikes_at_once_count_as_several(env: StrikeEnv) -> None:
    two = await env.store.add("acme", "alice", 2)
    assert (two.strikes, two.blocked) == (2, False)
    assert (await env.store.add("acme", "alice", 1)).blocked
    with pytest.raises(ValueError):
        await env.store.add("acme", "alice", 0)


async def test_concurrent_strikes_are_each_counted_once(env: StrikeEnv) -> None:
    states = await asyncio.gather(*(env.store.add("acme", "mallory") for _ in range(9)))
    # Nine strikes, three blocks: each started by exactly one call.
    assert sum(state.block_started for state in states) == 3
    final = await env.store.state("acme", "mallory")
    assert final.blocks == 3
    assert final.retry_after == pytest.approx(86400.0)


# --- Isolation ----------------------------------------------------------------------


async def test_users_and_tenants_never_share_strikes(env: StrikeEnv) -> None:
    assert (await env.strikes(3, "acme", "alice")).blocked
    # The same name in another tenant is another user, and so is another name.
    assert await env.store.state("globex", "alice") == StrikeState(0, as_of=START)
    assert (await env.strikes(2, "globex", "alice")).strikes == 2
    assert not (await env.strikes(2, "acme", "bob")).blocked
    assert (await env.store.state("acme", "alice")).blocked
    # A tenant id cannot be smuggled through the user name.
    assert (await env.store.state("acme", "globex:alice")).strikes == 0


async def test_long_user_names_are_kept_apart(env: StrikeEnv) -> None:
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    await env.strikes(2, "acme", long_a)
    assert (await env.store.state("acme", long_a)).strikes == 2
    assert (await env.store.state("acme", long_b)).strikes == 0


# --- Forgiving ---------------------------------------------------------------------------


async def test_forgiving_takes_a_strike_back(env: StrikeEnv) -> None:
    await env.strikes(2)
    forgiven = await env.store.forgive("acme", "alice")
    assert (forgiven.strikes, forgiven.blocked) == (1, False)
    # Two more strikes are needed for a block now, not one.
    assert not (await env.store.add("acme", "alice")).blocked
    assert (await env.store.add("acme", "alice")).blocked


async def test_forgiving_a_strike_behind_a_block_lifts_and_undoes_it(env: StrikeEnv) -> None:
    assert (await env.strikes(3)).blocked
    env.clock.advance(60.0)
    lifted = await env.store.forgive("acme", "alice")
    assert (lifted.blocked, lifted.blocks, lifted.strikes) == (False, 0, 2)
    assert not (await env.store.state("acme", "alice")).blocked

    # The two remaining strikes count again, and the next block is the first again.
    again = await env.store.add("acme", "alice")
    assert again.block_started and again.retry_after == pytest.approx(900.0)


async def test_forgiving_fresh_strikes_keeps_an_earlier_block(env: StrikeEnv) -> None:
    await env.strikes(3)
    await env.strikes(1)
    state = await env.store.forgive("acme", "alice")
    assert (state.strikes, state.blocked, state.blocks) == (0, True, 1)


async def test_forgiving_a_user_without_strikes_changes_nothing(env: StrikeEnv) -> None:
    state = await env.store.forgive("acme", "nobody", 3)
    assert (state.strikes, state.blocked, state.blocks) == (0, False, 0)
    assert (await env.store.add("acme", "nobody")).strikes == 1


# --- Memory only -----------------------------------------------------------------------


async def test_memory_forgets_users_whose_strikes_mean_nothing_any_more() -> None:
    clock = FakeClock(start=START)
    store = MemoryStrikes(POLICY, wall_clock=clock.now, sweep_seconds=60.0)
    for user in ("a", "b", "c"):
        await store.add("acme", user)
    assert len(store) == 3
    clock.advance(601.0)
    await store.state("acme", "a")
    assert len(store) == 0


# --- Redis only ----------------------------------------------------------------------


async def test_two_instances_share_one_count(strike_prefix: str) -> None:
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    clock = FakeClock(start=START)
    one = redis_strikes(first.client, strike_prefix, clock)
    other = redis_strikes(second.client, strike_prefix, clock)
    try:
        await one.add("acme", "alice")
        await other.add("acme", "alice")
        assert (await one.add("acme", "alice")).blocked
        assert (await other.state("acme", "alice")).blocked
        assert not (await other.forgive("acme", "alice")).blocked
        assert not (await one.state("acme", "alice")).blocked
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_time_is_used_without_a_clock(strike_prefix: str) -> None:
    connection = RedisConnection(REDIS_URL)
    store = strike_store(POLICY, connection.client, prefix=strike_prefix)
    try:
        await store.add("acme", "alice", 2)
        blocked = await store.add("acme", "alice")
        assert blocked.blocked and blocked.retry_after == pytest.approx(900.0, abs=1.0)
    finally:
        await connection.aclose()


async def test_a_user_is_one_key_that_expires_when_it_means_nothing(
    strike_prefix: str, inspect_redis: Redis
) -> None:
    connection = RedisConnection(REDIS_URL)
    clock = FakeClock(start=START)
    store = redis_strikes(connection.client, strike_prefix, clock)
    try:
        await store.add("acme", "alice")
        keys = [key async for key in inspect_redis.scan_iter(match=f"{strike_prefix}*")]
        assert keys == [f"{strike_prefix}user:acme:alice".encode()]
        # A strike means something for the window (600 s), plus a second's margin.
        assert 600_000 < await inspect_redis.pttl(keys[0]) <= 601_000

        await store.forgive("acme", "alice")
        assert await inspect_redis.exists(keys[0]) == 0
        # Reading a user's state writes nothing.
        await store.state("acme", "bob")
        assert await inspect_redis.exists(f"{strike_prefix}user:acme:bob") == 0
    finally:
        await connection.aclose()


async def test_redis_lost_fails_open_to_local_strikes_and_comes_back(
    strike_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(REDIS_PORT)
    await proxy.start()
    proxied = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0")
    clock = FakeClock(start=START)
    store = redis_strikes(proxied.client, strike_prefix, clock)
    try:
        assert (await store.add("acme", "mallory", 3)).blocked
        await proxy.cut()

        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            # Nobody is blocked by the outage, not even a user Redis knows as blocked...
            assert not (await store.state("acme", "mallory")).blocked
            assert not (await store.add("acme", "alice")).blocked
            # ...but strikes still count on this instance.
            assert (await store.add("acme", "alice", 2)).blocked
        assert store.guard.outages == 1
        assert "guard strikes: Redis unavailable" in caplog.text

        await proxy.start()
        clock.advance(1.0)  # the guard tries Redis again after retry_seconds
        # Back on Redis: its state resumes, what was decided locally is not merged.
        assert (await store.state("acme", "mallory")).blocked
        assert not (await store.state("acme", "alice")).blocked
        assert not store.guard.down
    finally:
        await proxy.cut()
        await proxied.aclose()
