"""Provider rate budgets shared by every instance through Redis.

Failure mode: fails open. Provider budgets protect the provider (and our standing
with it), not money: when Redis is unavailable, serving on this instance's own
``MemoryRateBudget`` beats refusing traffic; the worst case is a few extra 429s.

Each operation is one Lua script (one EVALSHA), so a reservation is atomic across
instances and the schedules form one FIFO queue. Times are Redis server time
(``TIME``), so instances with skewed clocks still agree. Each deployment is one hash
``<prefix><deployment>`` whose TTL outlasts its schedules, parking and learned rate.
The numbers (minimum rate, decrease factor, growth, forgetting, success window) are
``rate_budget``'s constants, written into the scripts so both stores behave alike.

With a ``ClearView`` (as ``shared_state`` builds it), a deployment without configured
limits that Redis found clear (no learned rate, not parked) is granted from memory
for the view's ``fresh_seconds`` (0.1 s); a 429 this instance sees ends that at once,
one seen by another instance within that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from string import Template
from typing import Any

from seawall.resilience import rate_budget
from seawall.resilience.clear_view import ClearView
from seawall.resilience.rate_budget import (
    MemoryRateBudget,
    RateLimits,
    Reservation,
    parks_deployment,
    snapshot_of,
)
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import RATE
from seawall.stores.redis_multiplex import MultiplexedRedis, Script

# A deployment's hash outlives its last schedule, parking or 429 by this long, so a
# learned rate is forgotten by its own rule before the key expires.
STATE_TTL_MARGIN_SECONDS = rate_budget.FORGET_AFTER_SECONDS + 10.0

# Shared by every script. Hash fields: rt/tt request/token TAT, rate/rate_at learned
# rate and when it was set, l429 last 429, cut last decrease, park parked until,
# first/last when the current stretch of answers began and the latest answer,
# ss<i>/sc<i> a ring of per-second success buckets (second, count).
_PRELUDE = Template(
    """
local MIN_RATE = $min_rate
local DECREASE_FACTOR = $decrease_factor
local GROWTH = $growth
local FORGET = $forget
local WINDOW = $window
local DECREASE_INTERVAL = $decrease_interval
local QUOTA_PARK = $quota_park
local TTL_MARGIN = $ttl_margin
local EPSILON = $epsilon
local LEARNING = $learning
local STRETCH_GAP = $stretch_gap

local function now_seconds()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function fmt(x)
  return string.format('%.17g', x)
end

local function opt(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end

local function learned_rate(rate, rate_at, l429, now)
  if rate == nil or l429 == nil or now - l429 >= FORGET then return nil end
  return rate * math.pow(1 + GROWTH, math.max(0, now - rate_at))
end

local function keep(key, now)
  local f = redis.call('HMGET', key, 'rt', 'tt', 'park')
  local horizon = now
  for i = 1, 3 do
    local t = opt(f[i])
    if t and t > horizon then horizon = t end
  end
  redis.call('PEXPIRE', key, math.ceil((horizon - now + TTL_MARGIN) * 1000))
end
"""
).substitute(
    min_rate=repr(rate_budget.MIN_RATE),
    decrease_factor=repr(rate_budget.DECREASE_FACTOR),
    growth=repr(rate_budget.GROWTH_PER_SECOND),
    forget=repr(rate_budget.FORGET_AFTER_SECONDS),
    window=repr(rate_budget.SUCCESS_WINDOW_SECONDS),
    decrease_interval=repr(rate_budget.DECREASE_INTERVAL_SECONDS),
    quota_park=repr(rate_budget.QUOTA_PARK_SECONDS),
    ttl_margin=repr(STATE_TTL_MARGIN_SECONDS),
    epsilon=repr(rate_budget.WAIT_EPSILON),
    learning=repr(rate_budget.LEARNING_SECONDS),
    stretch_gap=repr(rate_budget.STRETCH_GAP_SECONDS),
)

# ARGV: rpm, tpm ('' = unset), burst_seconds, adaptive (1/0), tokens, max_wait.
# Returns {granted, wait, parked, clear}: clear (1/0) when nothing limits the deployment
# (no rate, no token limit, not parked), so the booking wrote nothing.
_RESERVE = (
    _PRELUDE
    + """
local key = KEYS[1]
local rpm, tpm = opt(ARGV[1]), opt(ARGV[2])
local burst = tonumber(ARGV[3])
local adaptive = ARGV[4] == '1'
local tokens = tonumber(ARGV[5])
local max_wait = tonumber(ARGV[6])
local now = now_seconds()
local f = redis.call('HMGET', key, 'rt', 'tt', 'rate', 'rate_at', 'l429', 'park')
local rt, tt, park = opt(f[1]), opt(f[2]), opt(f[6])

local rate = nil
if rpm then rate = rpm / 60 end
if adaptive then
  local learned = learned_rate(opt(f[3]), opt(f[4]), opt(f[5]), now)
  if learned and (rate == nil or learned < rate) then rate = learned end
end
if park and park <= now then park = nil end
if rate == nil and tpm == nil and park == nil then
  return {1, '0', 0, 1}
end

local function earliest(tat, cost)
  if tat == nil then return now end
  return math.max(now, tat + cost - math.max(burst, cost))
end

local send = now
if park then send = park end
local interval, cost
if rate then
  interval = 1 / rate
  send = math.max(send, earliest(rt, interval))
end
if tpm then
  cost = tokens * 60 / tpm
  send = math.max(send, earliest(tt, cost))
end
local wait = send - now
if wait > max_wait + EPSILON then
  local parked = 0
  if park and park - now > max_wait + EPSILON then parked = 1 end
  return {0, fmt(wait), parked, 0}
end
if rate then
  redis.call('HSET', key, 'rt', fmt(math.max(rt or send, send) + interval))
end
if tpm then
  redis.call('HSET', key, 'tt', fmt(math.max(tt or send, send) + cost))
end
if rate or tpm then keep(key, now) end
return {1, fmt(wait), 0, 0}
"""
)

# ARGV: tpm, tokens used minus reserved (both known to be set and non-zero).
_SETTLE = (
    _PRELUDE
    + """
local key = KEYS[1]
local tpm = tonumber(ARGV[1])
local delta = tonumber(ARGV[2]) * 60 / tpm
local now = now_seconds()
local tt = opt(redis.call('HGET', key, 'tt')) or now
if delta >= 0 then
  tt = math.max(tt, now) + delta
else
  tt = math.max(tt + delta, now)
end
redis.call('HSET', key, 'tt', fmt(tt))
keep(key, now)
return 1
"""
)

# ARGV: park_for ('' = no parking), learn (1/0), rate_limited (1/0).
_OBSERVE = (
    _PRELUDE
    + """
local key = KEYS[1]
local park_for = opt(ARGV[1])
local learn = ARGV[2] == '1'
local rate_limited = ARGV[3] == '1'
local now = now_seconds()

if park_for then
  local park = opt(redis.call('HGET', key, 'park'))
  if park == nil or now + park_for > park then
    redis.call('HSET', key, 'park', fmt(now + park_for))
  end
end

if learn then
  local second = math.floor(now)
  local seen = redis.call('HMGET', key, 'first', 'last')
  local first, last = opt(seen[1]), opt(seen[2])
  if last == nil or now - last > STRETCH_GAP then
    first = now
    redis.call('HSET', key, 'first', fmt(now))
  end
  redis.call('HSET', key, 'last', fmt(now))
  if not rate_limited then
    local slot = second % WINDOW
    if opt(redis.call('HGET', key, 'ss' .. slot)) == second then
      redis.call('HINCRBY', key, 'sc' .. slot, 1)
    else
      redis.call('HSET', key, 'ss' .. slot, fmt(second), 'sc' .. slot, 1)
    end
  else
    local f = redis.call('HMGET', key, 'rate', 'rate_at', 'l429', 'cut', 'rt')
    local current = learned_rate(opt(f[1]), opt(f[2]), opt(f[3]), now)
    local cut, rt = opt(f[4]), opt(f[5])
    redis.call('HSET', key, 'l429', fmt(now))
    if now - first >= LEARNING and (cut == nil or now - cut >= DECREASE_INTERVAL) then
      local recent = 0
      for slot = 0, WINDOW - 1 do
        local g = redis.call('HMGET', key, 'ss' .. slot, 'sc' .. slot)
        local stamp = opt(g[1])
        if stamp and stamp > second - WINDOW then recent = recent + (opt(g[2]) or 0) end
      end
      local halved = 0
      if current then halved = current * DECREASE_FACTOR end
      -- The buckets cover the current (partial) second and the ones before it, but
      -- no time before this stretch of traffic began.
      local span = math.max(LEARNING, now - math.max(second - WINDOW + 1, first))
      local new = math.max(MIN_RATE, recent / span, halved)
      if current and new > current then new = current end
      -- GCRA credits at most one burst from a TAT in the past; start it at now.
      redis.call('HSET', key, 'rate', fmt(new), 'rate_at', fmt(now), 'cut', fmt(now),
        'rt', fmt(math.max(rt or now, now)))
    end
  end
end
keep(key, now)
return 1
"""
)

# Returns {learned rate or '', parked until or '', rt or '', tt or '', now}.
_SNAPSHOT = (
    _PRELUDE
    + """
local key = KEYS[1]
local now = now_seconds()
local f = redis.call('HMGET', key, 'rate', 'rate_at', 'l429', 'park', 'rt', 'tt')
local rate = learned_rate(opt(f[1]), opt(f[2]), opt(f[3]), now)
local out = {}
out[1] = rate and fmt(rate) or ''
for i = 4, 6 do out[i - 2] = f[i] or '' end
out[5] = fmt(now)
return out
"""
)


def _arg(value: float | None) -> str:
    """A number as a script argument; '' for unset."""
    return "" if value is None else repr(float(value))


def _optional_float(value: Any) -> float | None:
    """A script reply field as a float; None for ''."""
    return None if value in (b"", "", None) else float(value)


# What ``reserve`` answers for a deployment with nothing to enforce: send now.
GRANTED = Reservation(granted=True, wait=0.0)


class RedisRateBudget:
    """``RateBudget`` shared through Redis; on Redis failure it serves from ``fallback``."""

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        fallback: MemoryRateBudget,
        guard: FailOpenGuard,
        view: ClearView | None = None,
        prefix: str = RATE,
    ) -> None:
        self._fallback = fallback
        self._guard = guard
        # Deployments with nothing to enforce, as last seen: ``reserve`` grants them
        # without Redis (only those without configured limits can be clear).
        self._view = view
        self._prefix = prefix
        self._reserve = client.register_script(_RESERVE)
        self._settle = client.register_script(_SETTLE)
        self._observe = client.register_script(_OBSERVE)
        self._snapshot = client.register_script(_SNAPSHOT)

    async def reserve(
        self, deployment: str, limits: RateLimits, tokens: int, max_wait: float
    ) -> Reservation:
        """Book one request of ``tokens`` tokens if it can be sent within ``max_wait``."""
        view = self._view
        if view is not None and view.clear(deployment):
            return GRANTED
        args = [
            _arg(limits.rpm),
            _arg(limits.tpm),
            _arg(limits.burst_seconds),
            "1" if limits.adaptive else "0",
            str(tokens),
            _arg(max_wait),
        ]
        reply = await self._run(self._reserve, deployment, args)
        if reply is None:
            return await self._fallback.reserve(deployment, limits, tokens, max_wait)
        granted, wait, parked, clear = reply
        if view is not None:
            view.saw(deployment, bool(clear))
        return Reservation(granted=bool(granted), wait=float(wait), parked=bool(parked))

    async def settle(
        self, deployment: str, limits: RateLimits, reserved_tokens: int, used_tokens: int
    ) -> None:
        """Charge or refund the difference between reserved and used tokens."""
        if limits.tpm is None or used_tokens == reserved_tokens:
            return
        args = [_arg(limits.tpm), str(used_tokens - reserved_tokens)]
        if await self._run(self._settle, deployment, args) is None:
            await self._fallback.settle(deployment, limits, reserved_tokens, used_tokens)

    async def observe(
        self,
        deployment: str,
        limits: RateLimits,
        *,
        rate_limited: bool,
        retry_after: float | None = None,
        quota_exhausted: bool = False,
    ) -> None:
        """Learn from one provider answer: a success, a 429, or an exhausted quota."""
        park_for: float | None = None
        if parks_deployment(limits, rate_limited, retry_after, quota_exhausted):
            park_for = retry_after if retry_after is not None else rate_budget.QUOTA_PARK_SECONDS
        learn = limits.adaptive and not quota_exhausted
        if park_for is None and not learn:
            return
        bad_news = rate_limited or park_for is not None
        if bad_news and self._view is not None:
            # This instance's own bad news: ask Redis from the next request on.
            self._view.saw(deployment, False)
        args = [_arg(park_for), "1" if learn else "0", "1" if rate_limited else "0"]
        reply = await self._run(self._observe, deployment, args)
        if bad_news and self._view is not None:
            # Again: a reservation sent before the 429 may have been answered "clear"
            # meanwhile (replies come in order, so none older is still on its way).
            self._view.saw(deployment, False)
        if reply is None:
            await self._fallback.observe(
                deployment,
                limits,
                rate_limited=rate_limited,
                retry_after=retry_after,
                quota_exhausted=quota_exhausted,
            )

    async def snapshot(self, deployment: str) -> dict[str, float | None]:
        """The deployment's learned rate, parking and backlogs, for tests and metrics."""
        reply = await self._run(self._snapshot, deployment, [])
        if reply is None:
            return await self._fallback.snapshot(deployment)
        rate, parked_until, request_tat, token_tat, now = reply
        return snapshot_of(
            float(now),
            learned_rate=_optional_float(rate),
            parked_until=_optional_float(parked_until),
            request_tat=_optional_float(request_tat),
            token_tat=_optional_float(token_tat),
        )

    async def _run(self, script: Script, deployment: str, args: Sequence[str]) -> list[Any] | None:
        """Run one script on the deployment's key; None when the caller must serve locally."""
        if not self._guard.use_redis():
            return None
        try:
            reply = await script(keys=[self._prefix + deployment], args=list(args))
        except REDIS_FAILURES as exc:
            self._guard.failed(exc)
            return None
        self._guard.succeeded()
        return reply if isinstance(reply, list) else [reply]
