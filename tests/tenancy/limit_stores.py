"""Client-limit stores for the contract tests, and a private Redis to take away."""

from __future__ import annotations

import secrets

from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.client_limits import MemoryClientLimits
from seawall.tenancy.client_limits_redis import RedisClientLimits
from tests.resilience.fake_clock import FakeClock

REDIS_URL = "redis://127.0.0.1:6379/0"


def unique_prefix(base: str) -> str:
    """A key prefix under ``base`` of this test's own."""
    return f"{base}test-{secrets.token_hex(6)}:"


def redis_store(
    client: MultiplexedRedis, prefix: str, clock: FakeClock | None
) -> tuple[RedisClientLimits, FailOpenGuard]:
    """A Redis store (on ``clock``'s time, or Redis's when None) and the guard it reports to."""
    guard_clock = clock if clock is not None else FakeClock()
    guard = FailOpenGuard("client rate limits", guard_clock.now, retry_seconds=1.0)
    store = RedisClientLimits(
        client,
        fallback=MemoryClientLimits(guard_clock),
        guard=guard,
        prefix=prefix,
        clock=clock,
    )
    return store, guard
