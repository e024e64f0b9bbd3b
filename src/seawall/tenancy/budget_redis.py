"""Budgets shared by every instance through Redis.

Each account's counter in one window is a hash ``<prefix>s:<period>:<start>:<account>``
(fields ``spent`` and ``reserved`` in nano-dollars, ``alerted``) beside a sorted set
``<prefix>r:...`` of its open reservations, scored by when each lapses (Redis server
time). One script checks every rule a request is charged to and holds the amount on
all or none; another moves a hold to ``spent`` with the actual cost and reports soft
limits reached (once per window, across instances). Keys expire two hours after their
window ends; ``total`` counters never expire.

A missing counter (the window's first request, a restarted or flushed Redis) is
started from the ledger before the reservation is retried, so spend survives Redis.

Failure mode: fails closed by default. Budgets protect money: while Redis cannot be
reached, a request under a hard budget is refused with 503 and Retry-After. With
``fail_open=True`` it is served on this instance's ``MemoryBudgetStore``, whose
counters start from the ledger when the outage begins (a warning is logged and
``local_calls`` counts them). Requests under soft budgets only are always counted
locally during an outage: nothing is refused on their account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from seawall.errors import ServiceUnavailable
from seawall.stores.fail_open import REDIS_FAILURES
from seawall.stores.redis_keys import BUDGET
from seawall.stores.redis_multiplex import MultiplexedRedis
from seawall.tenancy.budgets import (
    DEFAULT_LEDGER_TIMEOUT_S,
    DEFAULT_RESERVATION_TTL_S,
    KEEP_AFTER_WINDOW_S,
    NO_RESERVATION,
    Charge,
    LedgerSeeds,
    LedgerSpend,
    MemoryBudgetStore,
    OverBudget,
    Reservation,
    SoftLimitCrossed,
    WallClock,
    Window,
    counter_key,
    distinct_charges,
    new_reservation_id,
    to_nanos,
    to_usd,
    window_of,
)

logger = logging.getLogger(__name__)

_PRELUDE = """
local function int(x)
  return string.format('%d', x)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A hold is '<reservation id>:<nano-dollars>', so releasing it needs no other lookup.
local function held(member)
  return tonumber(string.match(member, ':(%d+)$'))
end

local function release_lapsed(h, z, now)
  local lapsed = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #lapsed == 0 then return end
  local total = 0
  for _, member in ipairs(lapsed) do total = total + held(member) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  redis.call('HINCRBY', h, 'reserved', int(-total))
end
"""

# KEYS: each charge's hash and hold set, in pairs.
# ARGV: amount, reservation id, hold ms, then per charge: hard limit ('' = none), keep ms
# ('' = forever). Returns {1} held; {0, i, spent, reserved} refused by charge i;
# {2, {i, ...}} those charges' counters are missing (seed them, then ask again).
_RESERVE = (
    _PRELUDE
    + """
local n = #KEYS / 2
local missing = {}
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2 * i - 1], 'spent') == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {2, missing} end
local now = now_ms()
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  release_lapsed(h, z, now)
  local hard = ARGV[2 + 2 * i]
  if hard ~= '' then
    local f = redis.call('HMGET', h, 'spent', 'reserved')
    local spent, reserved = tonumber(f[1]) or 0, tonumber(f[2]) or 0
    if spent + reserved >= tonumber(hard) then
      return {0, i, int(spent), int(reserved)}
    end
  end
end
local member = ARGV[2] .. ':' .. ARGV[1]
local lapses = now + tonumber(ARGV[3])
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', h, 'reserved', ARGV[1])
  redis.call('ZADD', z, lapses, member)
  local keep = ARGV[3 + 2 * i]
  if keep ~= '' then redis.call('PEXPIRE', z, keep) end
end
return {1}
"""
)

# KEYS: as for reserve. ARGV: hold member, actual cost, then per charge: soft limit
# ('' = none). Returns {{i, spent}, ...}: the charges whose soft limit this reached.
_SETTLE = (
    _PRELUDE
    + """
local n = #KEYS / 2
local member = ARGV[1]
local crossed = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  local was_held = redis.call('ZREM', z, member)
  -- A missing counter is started from the ledger, which will hold this cost too.
  if redis.call('HEXISTS', h, 'spent') == 1 then
    if was_held == 1 then redis.call('HINCRBY', h, 'reserved', int(-held(member))) end
    local spent = redis.call('HINCRBY', h, 'spent', ARGV[2])
    local soft = ARGV[2 + i]
    if soft ~= '' and spent >= tonumber(soft) and redis.call('HSETNX', h, 'alerted', 1) == 1 then
      crossed[#crossed + 1] = {i, spent}
    end
  end
end
return crossed
"""
)

# KEYS: hash, hold set. ARGV: spent, keep ms ('' = forever), soft limit ('' = none).
# The first seed wins; holds from before it are dropped with the counter they were in.
_SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'reserved', 0)
  redis.call('DEL', KEYS[2])
  local spent = tonumber(ARGV[1])
  if ARGV[3] ~= '' and spent > 0 and spent >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'alerted', 1)
  end
  if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return 1
"""

# Seeding rounds before giving up on a counter that keeps vanishing.
_SEED_ROUNDS = 3


def _limit(usd: float | None) -> str:
    return "" if usd is None else str(to_nanos(usd))


class RedisBudgetStore:
    """``BudgetStore`` shared through Redis; see the module docstring for outages.

    Counters for metrics, read as plain attributes: ``outages`` (times Redis was lost),
    ``local_calls`` (reservations served from memory because Redis was unavailable),
    ``unavailable`` (requests refused with 503 because hard budgets fail closed),
    ``unsettled`` (settlements lost to an outage).
    """

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        wall_clock: WallClock = time.time,
        ledger_spend: LedgerSpend | None = None,
        fail_open: bool = False,
        fallback: MemoryBudgetStore | None = None,
        now: Callable[[], float] = time.monotonic,
        retry_seconds: float = 1.0,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        ledger_timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S,
        prefix: str = BUDGET,
    ) -> None:
        self.outages = 0
        self.local_calls = 0
        self.unavailable = 0
        self.unsettled = 0
        self._wall_clock = wall_clock
        self._fail_open = fail_open
        self._fallback = fallback or MemoryBudgetStore(
            wall_clock,
            ledger_spend=ledger_spend,
            reservation_ttl_s=reservation_ttl_s,
            ledger_timeout_s=ledger_timeout_s,
        )
        self._seeds = LedgerSeeds(ledger_spend, timeout_s=ledger_timeout_s)
        self._now = now
        self._retry_seconds = retry_seconds
        self._hold_ms = str(max(1, round(reservation_ttl_s * 1000)))
        self._prefix = prefix
        self._down_until: float | None = None
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._seed = client.register_script(_SEED)
        self._client = client

    async def reserve(self, charges: Sequence[Charge], amount_usd: float) -> Reservation:
        """Hold ``amount_usd`` on every charge, or raise ``OverBudget`` and hold nothing."""
        unique = distinct_charges(charges)
        if not unique:
            return NO_RESERVATION
        if self._is_down():
            return await self._reserve_without_redis(unique, amount_usd)
        now = self._wall_clock()
        windows = tuple(window_of(charge.rule.period, now) for charge in unique)
        keys = self._keys(unique, windows)
        amount = to_nanos(amount_usd)
        reservation_id = new_reservation_id()
        args = [str(amount), reservation_id, self._hold_ms]
        for charge, window in zip(unique, windows, strict=True):
            args += [_limit(charge.rule.hard_usd), self._keep_ms(window, now)]
        try:
            reply = await self._reserve(keys=keys, args=args)
            for _ in range(_SEED_ROUNDS):
                if int(reply[0]) != 2:
                    break
                await self._seed_missing(unique, windows, keys, [int(i) - 1 for i in reply[1]], now)
                reply = await self._reserve(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            self._failed(exc)
            return await self._reserve_without_redis(unique, amount_usd)
        self._succeeded()
        outcome = int(reply[0])
        if outcome == 0:
            refused = int(reply[1]) - 1
            spent, reserved = to_usd(int(reply[2])), to_usd(int(reply[3]))
            raise OverBudget(unique[refused], windows[refused], spent, reserved)
        if outcome != 1:
            # Counters that vanish as fast as they are seeded: Redis is evicting them.
            raise ServiceUnavailable(
                "Budgets cannot be checked right now; try again shortly.",
                retry_after=self._retry_seconds,
            )
        return Reservation(reservation_id, unique, windows, amount, shared=True)

    async def settle(
        self, reservation: Reservation, actual_usd: float
    ) -> tuple[SoftLimitCrossed, ...]:
        """Release the hold and add the actual cost; returns soft limits newly reached."""
        if not reservation.charges:
            return ()
        if not reservation.shared:
            return await self._fallback.settle(reservation, actual_usd)
        if self._is_down():
            return await self._settle_without_redis(reservation, actual_usd)
        keys = self._keys(reservation.charges, reservation.windows)
        member = f"{reservation.reservation_id}:{reservation.amount_nanos}"
        args = [member, str(to_nanos(actual_usd))]
        args += [_limit(charge.rule.soft_usd) for charge in reservation.charges]
        try:
            reply = await self._settle(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            self._failed(exc)
            return await self._settle_without_redis(reservation, actual_usd)
        self._succeeded()
        return tuple(
            SoftLimitCrossed(
                reservation.charges[int(index) - 1],
                reservation.windows[int(index) - 1],
                to_usd(int(spent)),
            )
            for index, spent in reply
        )

    async def spent(self, charge: Charge) -> float:
        """Settled spend of the charge's account in its current window, in US dollars."""
        if self._is_down():
            return await self._spent_without_redis(charge)
        now = self._wall_clock()
        window = window_of(charge.rule.period, now)
        keys = self._keys((charge,), (window,))
        try:
            value = await self._client.hget(keys[0], "spent")
            if value is None:
                await self._seed_missing((charge,), (window,), keys, [0], now)
                value = await self._client.hget(keys[0], "spent")
        except REDIS_FAILURES as exc:
            self._failed(exc)
            return await self._spent_without_redis(charge)
        self._succeeded()
        return 0.0 if value is None else to_usd(int(value))

    def _keys(self, charges: Sequence[Charge], windows: Sequence[Window]) -> list[str]:
        keys: list[str] = []
        for charge, window in zip(charges, windows, strict=True):
            name = counter_key(charge, window)
            keys += [f"{self._prefix}s:{name}", f"{self._prefix}r:{name}"]
        return keys

    @staticmethod
    def _keep_ms(window: Window, now: float) -> str:
        # Relative to the caller's clock, so an injected wall clock expires keys sensibly.
        if window.end is None:
            return ""
        return str(max(1, round((window.end + KEEP_AFTER_WINDOW_S - now) * 1000)))

    async def _seed_missing(
        self,
        charges: Sequence[Charge],
        windows: Sequence[Window],
        keys: Sequence[str],
        missing: Sequence[int],
        now: float,
    ) -> None:
        for index in missing:
            charge, window = charges[index], windows[index]
            spend_key, holds_key = keys[2 * index], keys[2 * index + 1]
            spent = await self._seeds.spend_nanos(spend_key, charge, window)
            args = [str(spent), self._keep_ms(window, now), _limit(charge.rule.soft_usd)]
            await self._seed(keys=[spend_key, holds_key], args=args)

    async def _reserve_without_redis(
        self, charges: Sequence[Charge], amount_usd: float
    ) -> Reservation:
        if not self._fail_open and any(charge.rule.hard_usd is not None for charge in charges):
            self.unavailable += 1
            raise ServiceUnavailable(
                "Budgets cannot be checked right now; try again shortly.",
                retry_after=self._retry_after(),
            )
        self.local_calls += 1
        return await self._fallback.reserve(charges, amount_usd)

    async def _settle_without_redis(
        self, reservation: Reservation, actual_usd: float
    ) -> tuple[SoftLimitCrossed, ...]:
        if self._fail_open:
            return await self._fallback.settle(reservation, actual_usd)
        # The ledger still has the cost; Redis lets the hold lapse on its own.
        self.unsettled += 1
        return ()

    async def _spent_without_redis(self, charge: Charge) -> float:
        if self._fail_open:
            return await self._fallback.spent(charge)
        raise ServiceUnavailable(
            "Budgets cannot be read right now; try again shortly.", retry_after=self._retry_after()
        )

    def _is_down(self) -> bool:
        """Whether Redis failed lately: serve without it until ``retry_seconds`` pass."""
        return self._down_until is not None and self._now() < self._down_until

    def _retry_after(self) -> float:
        if self._down_until is None:
            return self._retry_seconds
        return max(self._down_until - self._now(), self._retry_seconds)

    def _failed(self, error: BaseException) -> None:
        if self._down_until is None:
            self.outages += 1
            # Local counters from an earlier outage are stale: start them from the ledger.
            self._fallback.clear()
            policy = (
                "counting on this instance from the ledger (fail open)"
                if self._fail_open
                else "refusing requests under hard budgets until it is back (fail closed)"
            )
            logger.warning(
                "budgets: Redis unavailable (%s: %s); %s", type(error).__name__, error, policy
            )
        self._down_until = self._now() + self._retry_seconds

    def _succeeded(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            logger.warning("budgets: Redis is back; shared budgets in use again")
