"""Builds the failure-handling state: in memory, or shared through Redis when configured.

Breakers and provider budgets are shared by every instance through Redis and fail
open to per-instance memory while Redis is away. Retry budgets, balancing and the
admission queue are per instance by design (see their modules) and are built
directly where the services are assembled.
"""

from __future__ import annotations

from seawall.config.schema import ResilienceSettings
from seawall.resilience.breaker_redis import RedisBreakerStore
from seawall.resilience.circuit_breaker import BreakerStore, MemoryBreakerStore
from seawall.resilience.clear_view import ClearView
from seawall.resilience.clock import Clock
from seawall.resilience.rate_budget import MemoryRateBudget, RateBudget
from seawall.resilience.rate_budget_redis import RedisRateBudget
from seawall.resilience.retry_budget import RetryBudget
from seawall.stores.fail_open import FailOpenGuard
from seawall.stores.redis_multiplex import MultiplexedRedis


def breaker_store(clock: Clock, redis: MultiplexedRedis | None) -> BreakerStore:
    """Circuit breakers: Redis-shared when a client is given, else in memory."""
    memory = MemoryBreakerStore(clock)
    if redis is None:
        return memory
    guard = FailOpenGuard("circuit breakers", clock.now)
    return RedisBreakerStore(redis, fallback=memory, guard=guard, view=ClearView(clock.now))


def rate_budget(clock: Clock, redis: MultiplexedRedis | None) -> RateBudget:
    """Provider rate budgets: Redis-shared when a client is given, else in memory."""
    memory = MemoryRateBudget(clock)
    if redis is None:
        return memory
    guard = FailOpenGuard("provider rate budgets", clock.now)
    return RedisRateBudget(redis, fallback=memory, guard=guard, view=ClearView(clock.now))


def retry_budget(clock: Clock, settings: ResilienceSettings) -> RetryBudget:
    """This instance's retry budget, from settings."""
    budget = settings.retry_budget
    return RetryBudget(
        clock,
        ratio=budget.ratio,
        min_per_second=budget.min_per_second,
        window_seconds=budget.window_seconds,
    )
