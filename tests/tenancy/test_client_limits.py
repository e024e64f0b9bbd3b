"""Client rate limits: one contract, run against the in-memory and the Redis store.

Both stores run on a ``FakeClock`` here (the Redis store sends its time to the
script), so waits are exact and periods pass without sleeping. The Redis-only tests
at the end use Redis's own clock, two instances on one Redis, and an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from seawall.stores.redis_connection import RedisConnection
from seawall.stores.redis_keys import LIMIT
from seawall.tenancy.client_limits import (
    ClientLimits,
    ClientLimitStore,
    Decision,
    Entry,
    MemoryClientLimits,
    ip_subject,
    key_subject,
    user_subject,
)
from seawall.tenancy.rate_limit_headers import rate_limit_headers, rate_limited_error
from tests.private_redis import PrivateRedis
from tests.redis_keyspace import delete_prefix
from tests.resilience.fake_clock import FakeClock
from tests.tenancy.limit_stores import REDIS_URL, redis_store, unique_prefix

KEY = key_subject("key_1")
IP = ip_subject("203.0.113.7")
ALICE = user_subject("acme", "alice")


@dataclass
class LimitEnv:
    """A store under test and the clock it runs on."""

    store: ClientLimitStore
    clock: FakeClock
    kind: str

    async def check(self, entries: list[Entry], tokens: int = 0) -> Decision:
        """One ``check`` on the store."""
        return await self.store.check(entries, tokens)

    async def allowed(self, count: int, entries: list[Entry], tokens: int = 0) -> list[bool]:
        """Whether each of ``count`` checks in a row was allowed."""
        return [(await self.check(entries, tokens)).allowed for _ in range(count)]


@pytest.fixture
async def limit_prefix() -> AsyncIterator[str]:
    """A fresh key prefix, with every key under it deleted after the test."""
    prefix = unique_prefix(LIMIT)
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, limit_prefix: str) -> AsyncIterator[LimitEnv]:
    """Each store, empty, on a fake clock."""
    clock = FakeClock()
    if request.param == "memory":
        yield LimitEnv(MemoryClientLimits(clock), clock, "memory")
        return
    connection = RedisConnection(REDIS_URL)
    store, guard = redis_store(connection.client, limit_prefix, clock)
    try:
        yield LimitEnv(store, clock, "redis")
        # Every answer came from Redis, not from the fail-open fallback.
        assert guard.outages == 0
    finally:
        await connection.aclose()


# --- Requests per minute ----------------------------------------------------------


async def test_rpm_refuses_past_the_limit_and_says_when_to_retry(env: LimitEnv) -> None:
    three = [(KEY, ClientLimits(rpm=3))]
    accepted = [await env.check(three) for _ in range(3)]
    assert [d.allowed for d in accepted] == [True, True, True]
    assert [d.requests.remaining for d in accepted if d.requests] == [2, 1, 0]

    refused = await env.check(three)
    assert not refused.allowed
    # Capacity comes back one request per 60/3 seconds.
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.refusal is not None
    assert (refused.refusal.subject, refused.refusal.dimension) == (KEY, "requests")

    error = rate_limited_error(refused)
    headers = error.headers()
    assert error.status == 429
    assert error.code == "rate_limit_exceeded"
    assert headers["retry-after"] == "20"
    assert headers["retry-after-ms"] == "20000"
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    assert "requests per min (RPM) on API key key_1: Limit 3, Used 3" in error.message


async def test_capacity_comes_back_at_the_limit_rate(env: LimitEnv) -> None:
    three = [(KEY, ClientLimits(rpm=3))]
    assert await env.allowed(4, three) == [True, True, True, False]

    env.clock.advance(19.9)
    assert await env.allowed(1, three) == [False]
    env.clock.advance(0.1)
    assert await env.allowed(2, three) == [True, False]


async def test_limits_are_whole_again_a_period_after_the_last_request(env: LimitEnv) -> None:
    three = [(KEY, ClientLimits(rpm=3))]
    await env.allowed(3, three)
    env.clock.advance(60.0)

    fresh = await env.check(three)
    assert fresh.allowed
    assert fresh.requests is not None
    assert fresh.requests.remaining == 2
    assert fresh.requests.reset_seconds == pytest.approx(20.0)
    assert await env.allowed(3, three) == [True, True, False]


async def test_a_refused_request_consumes_nothing(env: LimitEnv) -> None:
    three = [(KEY, ClientLimits(rpm=3))]
    assert await env.allowed(10, three) == [True] * 3 + [False] * 7
    # Ten attempts did not push recovery further out: still 20 s for the next one.
    env.clock.advance(20.0)
    assert await env.allowed(1, three) == [True]


async def test_concurrent_requests_never_exceed_the_limit(env: LimitEnv) -> None:
    five = [(KEY, ClientLimits(rpm=5))]
    decisions = await asyncio.gather(*(env.check(five) for _ in range(20)))
    assert sum(d.allowed for d in decisions) == 5


# --- Tokens per minute -------------------------------------------------------------


async def test_tpm_refuses_a_request_whose_tokens_do_not_fit(env: LimitEnv) -> None:
    thousand = [(KEY, ClientLimits(tpm=1000))]
    first = await env.check(thousand, 600)
    assert first.allowed
    assert rate_limit_headers(first) == {
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "400",
        "x-ratelimit-reset-tokens": "36s",
    }

    refused = await env.check(thousand, 500)
    assert not refused.allowed
    # 100 more tokens must come back, at 1000 per minute: 6 s.
    assert refused.retry_after == pytest.approx(6.0)
    assert refused.refusal is not None
    assert refused.refusal.dimension == "tokens"
    assert refused.refusal.requested == 500

    # A smaller request still fits.
    assert (await env.check(thousand, 400)).allowed


async def test_a_request_larger_than_the_limit_passes_only_when_idle(env: LimitEnv) -> None:
    thousand = [(KEY, ClientLimits(tpm=1000))]
    big = await env.check(thousand, 1500)
    assert big.allowed
    assert big.tokens is not None
    assert big.tokens.remaining == 0
    assert big.tokens.reset_seconds == pytest.approx(90.0)

    nxt = await env.check(thousand, 10)
    assert not nxt.allowed
    # The 1500 tokens hold the subject for 90 s; 10 tokens fit 30.6 s from now.
    assert nxt.retry_after == pytest.approx(30.6)


async def test_settle_refunds_unused_tokens_and_charges_extra_ones(env: LimitEnv) -> None:
    thousand = [(KEY, ClientLimits(tpm=1000))]
    assert (await env.check(thousand, 800)).allowed
    await env.store.settle(thousand, 800, 100)
    after_refund = await env.store.peek(thousand, 0)
    assert after_refund.tokens is not None
    assert after_refund.tokens.remaining == 900

    await env.store.settle(thousand, 100, 700)
    after_charge = await env.store.peek(thousand, 0)
    assert after_charge.tokens is not None
    assert after_charge.tokens.remaining == 300
    assert not (await env.check(thousand, 400)).allowed


async def test_a_refund_never_gives_more_than_the_limit(env: LimitEnv) -> None:
    thousand = [(KEY, ClientLimits(tpm=1000))]
    await env.check(thousand, 100)
    await env.store.settle(thousand, 5000, 0)
    peeked = await env.store.peek(thousand, 0)
    assert peeked.tokens is not None
    assert peeked.tokens.remaining == 1000
    assert await env.allowed(2, thousand, 600) == [True, False]


# --- Several subjects ----------------------------------------------------------------


async def test_one_subject_refusing_books_nothing_on_the_others(env: LimitEnv) -> None:
    key = (KEY, ClientLimits(rpm=10, tpm=10_000))
    ip = (IP, ClientLimits(rpm=1))
    assert (await env.check([key, ip], 100)).allowed

    refused = await env.check([key, ip], 100)
    assert not refused.allowed
    assert refused.refusal is not None
    assert refused.refusal.subject == IP
    assert refused.retry_after == pytest.approx(60.0)

    # The key was charged once, for the request that went through.
    alone = await env.store.peek([key], 0)
    assert alone.requests is not None and alone.tokens is not None
    assert (alone.requests.remaining, alone.tokens.remaining) == (9, 9900)


async def test_headers_report_the_tightest_subject(env: LimitEnv) -> None:
    key = (KEY, ClientLimits(rpm=100, tpm=50_000))
    user = (ALICE, ClientLimits(rpm=5))
    decision = await env.check([key, user], 1000)
    assert rate_limit_headers(decision) == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "12s",
        "x-ratelimit-limit-tokens": "50000",
        "x-ratelimit-remaining-tokens": "49000",
        "x-ratelimit-reset-tokens": "1.2s",
    }


async def test_subjects_are_limited_independently(env: LimitEnv) -> None:
    one = ClientLimits(rpm=1)
    assert (await env.check([(ip_subject("10.0.0.1"), one)])).allowed
    assert not (await env.check([(ip_subject("10.0.0.1"), one)])).allowed
    assert (await env.check([(ip_subject("10.0.0.2"), one)])).allowed
    # The same user name in another tenant is another user.
    assert (await env.check([(user_subject("acme", "bob"), one)])).allowed
    assert (await env.check([(user_subject("globex", "bob"), one)])).allowed
    assert not (await env.check([(user_subject("acme", "bob"), one)])).allowed


async def test_unlimited_subjects_are_always_allowed_without_headers(env: LimitEnv) -> None:
    decision = await env.check([(KEY, ClientLimits()), (IP, ClientLimits())], 10**9)
    assert decision.allowed
    assert rate_limit_headers(decision) == {}


async def test_peek_books_nothing(env: LimitEnv) -> None:
    one = [(KEY, ClientLimits(rpm=1))]
    for _ in range(3):
        assert (await env.store.peek(one, 0)).allowed
    assert await env.allowed(2, one) == [True, False]
    assert not (await env.store.peek(one, 0)).allowed


# --- Redis only ----------------------------------------------------------------------


@pytest.fixture
async def connections() -> AsyncIterator[tuple[RedisConnection, RedisConnection]]:
    """Two independent clients, as two Seawall instances would have."""
    first, second = RedisConnection(REDIS_URL), RedisConnection(REDIS_URL)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_instances_share_one_limit_on_redis_time(
    connections: tuple[RedisConnection, RedisConnection], limit_prefix: str
) -> None:
    first, first_guard = redis_store(connections[0].client, limit_prefix, None)
    second, second_guard = redis_store(connections[1].client, limit_prefix, None)
    four = [(KEY, ClientLimits(rpm=4, tpm=1000))]

    decisions = [await store.check(four, 100) for store in (first, second) * 3]

    # Four requests per minute in all, whichever instance is asked.
    assert [d.allowed for d in decisions] == [True] * 4 + [False] * 2
    assert decisions[-1].retry_after == pytest.approx(15.0, abs=0.5)
    assert decisions[3].tokens is not None
    assert decisions[3].tokens.remaining == 600
    assert first_guard.outages == second_guard.outages == 0


async def test_each_subject_is_one_key_that_expires_when_whole_again(
    connections: tuple[RedisConnection, RedisConnection], limit_prefix: str, inspect_redis: Redis
) -> None:
    store, _ = redis_store(connections[0].client, limit_prefix, None)
    client = inspect_redis

    await store.check([(KEY, ClientLimits())], 100)
    assert [key async for key in client.scan_iter(match=f"{limit_prefix}*")] == []

    await store.check([(KEY, ClientLimits(rpm=60, tpm=6000))], 300)
    keys = [key async for key in client.scan_iter(match=f"{limit_prefix}*")]
    assert keys == [f"{limit_prefix}{KEY}".encode()]
    # Full again 3 s later (300 tokens at 100/s), plus a second's margin.
    assert 3000 < await client.pttl(keys[0]) <= 4000


async def test_redis_outage_fails_open_to_local_limits_and_recovers(
    tmp_path: Path, limit_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = PrivateRedis(tmp_path)
    server.start()
    connection = RedisConnection(server.url)
    clock = FakeClock()
    store, guard = redis_store(connection.client, limit_prefix, clock)
    two = [(KEY, ClientLimits(rpm=2))]
    try:
        assert (await store.check(two, 0)).allowed

        server.kill()
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            local = [await store.check(two, 0) for _ in range(3)]
        # Still limited, by this instance's own schedule (which starts empty).
        assert [d.allowed for d in local] == [True, True, False]
        assert local[-1].retry_after == pytest.approx(30.0)
        assert guard.outages == 1
        assert guard.down
        assert "client rate limits: Redis unavailable" in caplog.text

        server.start()
        clock.advance(1.0)
        with caplog.at_level(logging.WARNING, logger="seawall.stores.fail_open"):
            shared = await store.check(two, 0)
        # Back on Redis (which lost its data when it was killed).
        assert shared.allowed
        assert shared.requests is not None
        assert shared.requests.remaining == 1
        assert not guard.down
        assert "Redis is back" in caplog.text
    finally:
        await connection.aclose()
        server.kill()
