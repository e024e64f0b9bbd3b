"""Automatic revert: one contract on the in-memory and the Redis switch, then Redis only.

Both stores run on a ``FakeClock``'s time (the Redis store sends it to its scripts and
keeps its cache on it), so windows and cool-downs pass without sleeping. The
Redis-only tests use two instances on one Redis, Redis's own clock, and a cut
connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from seawall.guard.auto_revert import (
    MemoryRevertSwitch,
    RevertPolicy,
    RevertSwitch,
    SwitchEvent,
)
from seawall.guard.auto_revert_redis import (
    GUARD_REVERT,
    TTL_MARGIN_MS,
    RedisRevertSwitch,
    revert_switch,
)
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.stores.tcp_proxy import TcpProxy

REDIS_PORT = 6379
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
# On a bucket boundary (a bucket is 6 s with a 60 s window), so tests read plainly.
START = 1_700_000_040.0
PER_TENANT = RevertPolicy(threshold=3, window_seconds=60.0, cooldown_seconds=300.0)
GLOBAL = RevertPolicy(threshold=3, window_seconds=60.0, cooldown_seconds=300.0, scope="global")
POLICIES = {"support": PER_TENANT, "search": GLOBAL}


@dataclass
class RevertEnv:
    """A switch under test and the clock it runs on."""

    switch: RevertSwitch
    clock: FakeClock

    async def detections(
        self, count: int, route: str = "support", tenant: str | None = "acme"
    ) -> list[SwitchEvent]:
        """``count`` detections one after another; the events they produced."""
        events = [await self.switch.record(route, tenant) for _ in range(count)]
        return [event for event in events if event is not None]


@pytest.fixture
async def revert_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, cleared afterwards."""
    prefix = f"{GUARD_REVERT}test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(prefix)


def redis_switch(
    client: MultiplexedRedis, prefix: str, clock: FakeClock | None, local: FakeClock
) -> RedisRevertSwitch:
    """A Redis switch on ``clock``'s time (Redis's when None), failing open to memory."""
    return RedisRevertSwitch(
        client,
        fallback=MemoryRevertSwitch(POLICIES, wall_clock=local.now, local=True),
        guard=FailOpenGuard("guard revert switches", local.now, retry_seconds=1.0),
        prefix=prefix,
        wall_clock=None if clock is None else clock.now,
        local_clock=local.now,
        cache_seconds=1.0,
    )


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, revert_prefix: str) -> AsyncIterator[RevertEnv]:
    """Each switch, empty, on a fake wall clock."""
    clock = FakeClock(start=START)
    if request.param == "memory":
        yield RevertEnv(MemoryRevertSwitch(POLICIES, wall_clock=clock.now), clock)
        return
    connection = RedisConnection(REDIS_URL)
    switch = redis_switch(connection.client, revert_prefix, clock, clock)
    try:
        yield RevertEnv(switch, clock)
        # Every answer came from Redis, not from the fail-open fallback.
        assert switch.guard.outages == 0
    finally:
        await connection.aclose()


# --- Switching on and back -------------------------------------------------------------


async def test_a_wave_crossing_the_threshold_switches_the_route(env: RevertEnv) -> None:
    assert await env.detections(2) == []
    assert not await env.switch.active("support", "acme")

    env.clock.advance(1.0)
    event = await env.switch.record("support", "acme")

    assert event == SwitchEvent(
        route="support", tenant="acme", active=True, at=START + 1, since=START + 1, detections=3
    )
    assert await env.switch.active("support", "acme")


async def test_only_detections_within_the_window_count(env: RevertEnv) -> None:
    for offset in (0.0, 30.0, 70.0):
        env.clock.time = START + offset
        assert await env.switch.record("support", "acme") is None
    # The first one left the window at 60 s: 2 of 3.
    assert not await env.switch.active("support", "acme")

    env.clock.time = START + 75.0
    event = await env.switch.record("support", "acme")
    assert event is not None
    assert event.detections == 3


async def test_the_route_reverts_after_a_cooldown_with_no_new_crossing(env: RevertEnv) -> None:
    await env.detections(2)
    env.clock.advance(2.0)
    [on] = await env.detections(1)
    # A detection later on, below the threshold, is not a crossing: the end stays put.
    env.clock.advance(98.0)
    assert await env.detections(1) == []

    env.clock.time = START + 2 + 300 - 0.1
    assert await env.switch.active("support", "acme")
    env.clock.time = START + 2 + 300
    assert not await env.switch.active("support", "acme")

    off = await env.switch.sweep()
    assert off == [SwitchEvent("support", "acme", False, at=START + 302, since=on.at)]
    # Each "off" comes out once.
    assert await env.switch.sweep() == []


async def test_a_continuing_wave_keeps_the_route_switched(env: RevertEnv) -> None:
    events = []
    # One detection every 10 s for ten minutes: every one from the third crosses again.
    for _ in range(60):
        events += await env.detections(1)
        env.clock.advance(10.0)
    assert len(events) == 1
    assert await env.switch.sweep() == []
    last = env.clock.time - 10.0

    env.clock.time = last + 299.0
    assert await env.switch.active("support", "acme")
    env.clock.time = last + 300.0
    assert not await env.switch.active("support", "acme")
    [off] = await env.switch.sweep()
    assert (off.active, off.since, off.at) == (False, START + 20.0, last + 300.0)


async def test_a_switch_that_ended_and_crossed_again_before_a_sweep_reports_both(
    env: RevertEnv,
) -> None:
    [first] = await env.detections(3)
    env.clock.advance(400.0)
    assert not await env.switch.active("support", "acme")

    [again] = await env.detections(3)
    assert again.at == START + 400.0
    assert await env.switch.active("support", "acme")
    # The first switch's "off" is still reported, at the time it happened.
    assert await env.switch.sweep() == [
        SwitchEvent("support", "acme", False, at=START + 300.0, since=first.at)
    ]


async def test_concurrent_detections_switch_the_route_once(env: RevertEnv) -> None:
    events = await asyncio.gather(*(env.switch.record("support", "acme") for _ in range(12)))
    assert [event.detections for event in events if event is not None] == [3]


# --- Scope ----------------------------------------------------------------------------------


async def test_one_tenants_wave_does_not_switch_another_tenant(env: RevertEnv) -> None:
    assert len(await env.detections(5, tenant="acme")) == 1
    assert await env.switch.active("support", "acme")

    assert not await env.switch.active("support", "globex")
    assert not await env.switch.active("support", None)
    # Globex's count starts from its own detections, not from acme's.
    assert await env.detections(2, tenant="globex") == []
    assert not await env.switch.active("support", "globex")


async def test_a_global_policy_counts_every_tenant_and_switches_them_all(env: RevertEnv) -> None:
    assert await env.detections(1, "search", "acme") == []
    assert await env.detections(1, "search", "globex") == []
    [event] = await env.detections(1, "search", None)

    assert (event.route, event.tenant, event.detections) == ("search", None, 3)
    for tenant in ("acme", "globex", "initech", None):
        assert await env.switch.active("search", tenant)
    # Other routes keep their own switches.
    assert not await env.switch.active("support", "acme")


async def test_routes_without_a_policy_never_switch(env: RevertEnv) -> None:
    assert await env.detections(10, route="chat") == []
    assert not await env.switch.active("chat", "acme")


async def test_names_with_separators_stay_apart(env: RevertEnv) -> None:
    await env.detections(3, tenant="*")
    assert await env.switch.active("support", "*")
    # A tenant called "*" is not "no tenant", nor "acme:x" another split of the name.
    assert not await env.switch.active("support", None)
    await env.detections(3, tenant="acme:x")
    assert not await env.switch.active("support", "acme")


def test_policies_are_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        RevertPolicy(threshold=0)
    with pytest.raises(ValueError, match="window_seconds"):
        RevertPolicy(window_seconds=0)
    with pytest.raises(ValueError, match="cooldown_seconds"):
        RevertPolicy(cooldown_seconds=-1)
    with pytest.raises(ValueError, match="scope"):
        RevertPolicy(scope="user")  # type: ignore[arg-type]


async def test_the_memory_switch_forgets_idle_switches() -> None:
    clock = FakeClock(start=START)
    switch = MemoryRevertSwitch(POLICIES, wall_clock=clock.now)
    for tenant in ("a", "b", "c"):
        await switch.record("support", tenant)
    assert len(switch) == 3
    clock.advance(60.0)
    await switch.sweep()
    assert len(switch) == 0


# --- Redis only -------------------------------------------------------------------------------


@pytest.fixture
async def connections() -> AsyncIterator[tuple[RedisConnection, RedisConnection]]:
    """Two independent clients, as two Seawall instances would have."""
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_instances_share_counts_switches_and_off_events(
    connections: tuple[RedisConnection, RedisConnection], revert_prefix: str
) -> None:
    clock = FakeClock(start=START)
    first = redis_switch(connections[0].client, revert_prefix, clock, clock)
    second = redis_switch(connections[1].client, revert_prefix, clock, clock)

    assert await first.record("support", "acme") is None
    assert not await first.active("support", "acme")
    assert await second.record("support", "acme") is None
    # The third detection, on either instance, is the third of one count.
    event = await second.record("support", "acme")
    assert event is not None and event.detections == 3
    assert await second.active("support", "acme")

    # The first instance answers from what it saw a moment ago, for a second at most.
    assert not await first.active("support", "acme")
    clock.advance(1.0)
    assert await first.active("support", "acme")

    clock.advance(300.0)
    assert not await first.active("support", "acme")
    assert not await second.active("support", "acme")
    swept = await asyncio.gather(first.sweep(), second.sweep())
    # One "off" event in all, from whichever instance swept first.
    assert sorted(len(events) for events in swept) == [0, 1]
    assert [event for events in swept for event in events] == [
        SwitchEvent("support", "acme", False, at=START + 300.0, since=START)
    ]


async def test_on_redis_time_instances_agree_without_a_clock(
    connections: tuple[RedisConnection, RedisConnection], revert_prefix: str
) -> None:
    local = FakeClock(start=START)
    first = redis_switch(connections[0].client, revert_prefix, None, local)
    second = redis_switch(connections[1].client, revert_prefix, None, local)

    await first.record("search", "acme")
    await second.record("search", "globex")
    event = await first.record("search", "initech")

    assert event is not None
    assert event.at == pytest.approx(time.time(), abs=5.0)
    # Past the second instance's cache of its own "off" answer.
    local.advance(1.0)
    assert await second.active("search", "anyone")


async def test_counts_live_under_the_prefix_and_expire_with_the_window(
    connections: tuple[RedisConnection, RedisConnection], revert_prefix: str, inspect_redis: Redis
) -> None:
    clock = FakeClock(start=START)
    switch = redis_switch(connections[0].client, revert_prefix, clock, clock)
    await switch.record("support", "acme")

    keys = [key async for key in inspect_redis.scan_iter(match=f"{revert_prefix}*")]
    assert keys == [f"{revert_prefix}n:support:acme".encode()]
    ttl = await inspect_redis.pttl(keys[0])
    assert 60_000 < ttl <= 60_000 + TTL_MARGIN_MS


async def test_redis_outage_keeps_the_last_state_and_counts_locally(
    revert_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(REDIS_PORT)
    await proxy.start()
    proxied = RedisConnection(f"redis://127.0.0.1:{proxy.port}/0", socket_timeout_s=2.0)
    clock = FakeClock(start=START)
    switch = redis_switch(proxied.client, revert_prefix, clock, clock)
    try:
        shared = [await switch.record("support", "acme") for _ in range(3)]
        assert shared[-1] is not None and not shared[-1].local

        await proxy.cut()
        clock.advance(1.0)
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            # Redis is gone: acme stays switched, as last seen; globex stays off...
            assert await switch.active("support", "acme")
            assert not await switch.active("support", "globex")
            # ...until this instance alone counts a wave of its own.
            clock.time = START + 100.0
            events = [await switch.record("support", "globex") for _ in range(3)]
        assert "guard revert switches: Redis unavailable" in caplog.text
        assert switch.guard.outages == 1
        [local_on] = [event for event in events if event is not None]
        assert (local_on.tenant, local_on.local) == ("globex", True)
        assert await switch.active("support", "globex")

        # Acme's cool-down as last seen ends on time, Redis or not.
        clock.time = START + 300.0
        assert not await switch.active("support", "acme")

        await proxy.start()
        clock.advance(1.0)
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            # Back on Redis; globex stays switched on its local switch (the safe side).
            assert await switch.active("support", "globex")
            swept = await switch.sweep()
        assert "Redis is back" in caplog.text
        assert swept == [SwitchEvent("support", "acme", False, at=START + 300.0, since=START)]

        clock.time = START + 399.0
        assert await switch.active("support", "globex")
        clock.time = START + 400.0
        assert not await switch.active("support", "globex")
        assert await switch.sweep() == [
            SwitchEvent("support", "globex", False, at=START + 400.0, since=START + 100, local=True)
        ]
    finally:
        await proxied.aclose()
        await proxy.cut()


async def test_the_factory_builds_a_memory_switch_without_redis() -> None:
    switch = revert_switch(POLICIES, None)
    assert isinstance(switch, MemoryRevertSwitch)
    events = [await switch.record("support", "acme") for _ in range(3)]
    assert events[-1] is not None
    assert events[-1].at == pytest.approx(time.time(), abs=5.0)
