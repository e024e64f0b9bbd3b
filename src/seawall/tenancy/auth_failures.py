"""Failed authentication attempts, limited per client IP.

Guessing keys costs an attacker one request per guess; this makes guesses slow. Each
IP may fail ``max_failures`` times per ``period_seconds`` (a GCRA schedule, like the
client rate limits: a burst of that many, then one more every ``period / max``
seconds). Past that, every request from the IP is refused with 429 and Retry-After
before its key is even looked at, so a correct guess in the locked-out time does not
count either. Requests without a known IP (no peer address) are never limited.

Successful requests must stay cheap, so ``check`` reads only this instance's memory of
refused IPs; the shared schedule is consulted when a key fails (``failed``). An IP
refused on one instance is refused on another from its next failure there.

The schedules live in a ``ClientLimitStore`` of their own (Redis keys under
``AUTH_FAILURES``), so they are shared by every instance and fail open to
per-instance memory like the client limits.
"""

from __future__ import annotations

from seawall.errors import RateLimited
from seawall.resilience.clock import Clock
from seawall.stores.redis_keys import AUTH_FAILURES
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.client_limits import ClientLimits, ClientLimitStore
from seawall.tenancy.client_limits_redis import client_limit_store
from seawall.tenancy.rate_limit_headers import format_duration

# Refused IPs remembered per instance before expired ones are swept.
_SWEEP_AT = 10_000

DEFAULT_MAX_FAILURES = 10
DEFAULT_PERIOD_SECONDS = 60.0


class AuthFailureLimiter:
    """Counts failed authentications per IP and refuses an IP that failed too often."""

    def __init__(
        self,
        store: ClientLimitStore,
        clock: Clock,
        *,
        max_failures: int = DEFAULT_MAX_FAILURES,
        period_seconds: float = DEFAULT_PERIOD_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        # One "request" per failure: the request schedule is the failure schedule.
        self._limits = ClientLimits(rpm=max_failures, period_seconds=period_seconds)
        self._interval = period_seconds / max_failures
        # ip -> clock time until which it is refused, on this instance.
        self._refused_until: dict[str, float] = {}
        # Refusals, for metrics.
        self.refused = 0

    def check(self, ip: str | None) -> None:
        """Raise ``RateLimited`` (429, Retry-After) if ``ip`` may not try a key now."""
        if ip is None or not self._refused_until:
            return
        until = self._refused_until.get(ip)
        if until is None:
            return
        wait = until - self._clock.now()
        if wait <= 0:
            del self._refused_until[ip]
            return
        self.refused += 1
        raise _too_many(wait)

    async def failed(self, ip: str | None) -> None:
        """Count one failed authentication from ``ip``; raise once it is over the limit."""
        if ip is None:
            return
        decision = await self._store.check([(ip, self._limits)], 0)
        now = self._clock.now()
        if not decision.allowed:
            self._refuse(ip, now + decision.retry_after, now)
            self.refused += 1
            raise _too_many(decision.retry_after)
        if decision.requests is not None and decision.requests.remaining <= 0:
            # The burst is spent: the next attempt waits for the next failure's slot.
            self._refuse(ip, now + self._interval, now)

    def _refuse(self, ip: str, until: float, now: float) -> None:
        if len(self._refused_until) >= _SWEEP_AT:
            self._refused_until = {k: v for k, v in self._refused_until.items() if v > now}
        self._refused_until[ip] = until


def _too_many(wait: float) -> RateLimited:
    return RateLimited(
        "Too many failed authentication attempts from your address. "
        f"Please try again in {format_duration(wait)}.",
        code="too_many_authentication_failures",
        retry_after=wait,
    )


def auth_failure_limiter(
    clock: Clock,
    redis: MultiplexedRedis | None,
    *,
    max_failures: int = DEFAULT_MAX_FAILURES,
    period_seconds: float = DEFAULT_PERIOD_SECONDS,
) -> AuthFailureLimiter:
    """The limiter on its own store: Redis-shared when a client is given, else in memory."""
    store = client_limit_store(
        clock, redis, prefix=AUTH_FAILURES, name="authentication failure limits"
    )
    return AuthFailureLimiter(
        store, clock, max_failures=max_failures, period_seconds=period_seconds
    )
