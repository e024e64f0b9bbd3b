"""Client rate limits shared by every instance through Redis.

Failure mode: fails open. Client limits protect fairness between clients, not money
(budgets do that): while Redis is unavailable each instance enforces the limits on
its own ``MemoryClientLimits``, so a client may get up to one limit per instance
until Redis is back, instead of every request failing.

A check is one Lua script over every subject of the request, so deciding and
booking are atomic across instances, all or nothing. Each subject is one hash
``<prefix><subject>`` (fields ``r`` and ``t``: request and token TATs) that expires
once the subject is back to its full limit, when it would mean nothing anyway.
Times are Redis server time (``TIME``), so instances with skewed clocks agree; a
``clock`` given to the store replaces it (tests move time without sleeping). The
arithmetic is ``client_limits``'s, written again in Lua; the script returns the TATs
it decided on and the Python side reports from them with the same functions as the
memory store. A multi-key script needs every subject on one node: this targets one
Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seawall.resilience.clock import Clock
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import LIMIT
from seawall.stores.redis_multiplex import MultiplexedRedis, Script
from seawall.tenancy import client_limits
from seawall.tenancy.client_limits import (
    ALLOWED,
    ClientLimitStore,
    Decision,
    Entry,
    MemoryClientLimits,
    Schedules,
    decide,
    limited,
)

# A subject's hash outlives its schedules by this long (a key needs no exact expiry:
# a TAT in the past means "full" whether or not the key is still there).
TTL_MARGIN_MS = 1000

_PRELUDE = f"""
local EPSILON = {client_limits.EPSILON!r}
local TTL_MARGIN_MS = {TTL_MARGIN_MS}

local function opt(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end

local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

local now = opt(ARGV[1])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Expire the hash once both schedules are back to full.
local function keep(key, r, t)
  local horizon = now
  if r and r > horizon then horizon = r end
  if t and t > horizon then horizon = t end
  redis.call('PEXPIRE', key, math.ceil((horizon - now) * 1000) + TTL_MARGIN_MS)
end
"""

# KEYS: one per subject. ARGV: now ('' = server time), tokens, book (1/0), then per
# subject: rpm, tpm ('' = unlimited), period seconds.
# Returns {allowed (1/0), now, then per subject its request TAT and token TAT}: after
# the booking when one was made, as found otherwise ('' = none).
_CHECK = (
    _PRELUDE
    + """
local tokens = tonumber(ARGV[2])
local book = ARGV[3] == '1'

-- The TAT after booking cost seconds, or nil when it does not fit now; an oversized
-- booking (cost > period) fits an idle schedule only.
local function booked(tat, cost, period)
  local start = now
  if tat and tat > now then start = tat end
  local new = start + cost
  if new - now <= math.max(period, cost) + EPSILON then return new end
  return nil
end

local found, planned = {}, {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local a = 3 + (i - 1) * 3
  local rpm, tpm, period = opt(ARGV[a + 1]), opt(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local f = redis.call('HMGET', key, 'r', 't')
  local r, t = opt(f[1]), opt(f[2])
  found[i] = {r, t}
  local nr, nt = r, t
  if allowed == 1 and rpm then
    nr = booked(r, period / rpm, period)
    if nr == nil then allowed = 0 end
  end
  if allowed == 1 and tpm then
    nt = booked(t, tokens * period / tpm, period)
    if nt == nil then allowed = 0 end
  end
  planned[i] = {nr, nt}
end

local report = found
if allowed == 1 and book then
  report = planned
  for i, key in ipairs(KEYS) do
    local r, t = planned[i][1], planned[i][2]
    if r then redis.call('HSET', key, 'r', fmt(r)) end
    if t then redis.call('HSET', key, 't', fmt(t)) end
    keep(key, r, t)
  end
end

local out = {allowed, fmt(now)}
for i = 1, #KEYS do
  out[#out + 1] = fmt(report[i][1])
  out[#out + 1] = fmt(report[i][2])
end
return out
"""
)

# KEYS: subjects with a token limit. ARGV: now ('' = server time), used minus
# estimated tokens, then per subject: tpm, period seconds.
_SETTLE = (
    _PRELUDE
    + """
local delta_tokens = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local a = 2 + (i - 1) * 2
  local delta = delta_tokens * tonumber(ARGV[a + 2]) / tonumber(ARGV[a + 1])
  local f = redis.call('HMGET', key, 'r', 't')
  local r, t = opt(f[1]), opt(f[2]) or now
  if delta >= 0 then
    t = math.max(t, now) + delta
  else
    t = math.max(t + delta, now)
  end
  redis.call('HSET', key, 't', fmt(t))
  keep(key, r, t)
end
return 1
"""
)


def _arg(value: float | None) -> str:
    """A number as a script argument; '' for unset."""
    return "" if value is None else repr(value)


def _optional_float(value: Any) -> float | None:
    """A script reply field as a float; None for ''."""
    return None if value in (b"", "", None) else float(value)


class RedisClientLimits:
    """``ClientLimitStore`` shared through Redis; on Redis failure it serves from ``fallback``."""

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        fallback: MemoryClientLimits,
        guard: FailOpenGuard,
        prefix: str = LIMIT,
        clock: Clock | None = None,
    ) -> None:
        self._fallback = fallback
        self._guard = guard
        self._prefix = prefix
        self._clock = clock
        self._check = client.register_script(_CHECK)
        self._settle = client.register_script(_SETTLE)

    async def check(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Book one request of ``tokens`` tokens on every subject, or on none."""
        return await self._decide(entries, tokens, book=True)

    async def peek(self, entries: Sequence[Entry], tokens: int) -> Decision:
        """Whether ``check`` would allow the request now, and where subjects stand (no booking)."""
        return await self._decide(entries, tokens, book=False)

    async def settle(self, entries: Sequence[Entry], estimated: int, used: int) -> None:
        """Charge or refund the tokens a request really used against its estimate."""
        if used == estimated:
            return
        metered = [(s, limits) for s, limits in limited(entries) if limits.tpm is not None]
        if not metered:
            return
        args = [self._now(), str(used - estimated)]
        for _, limits in metered:
            args += [_arg(limits.tpm), _arg(limits.period_seconds)]
        if await self._run(self._settle, metered, args) is None:
            await self._fallback.settle(entries, estimated, used)

    async def _decide(self, entries: Sequence[Entry], tokens: int, *, book: bool) -> Decision:
        entries = limited(entries)
        if not entries:
            return ALLOWED
        args = [self._now(), str(tokens), "1" if book else "0"]
        for _, limits in entries:
            args += [_arg(limits.rpm), _arg(limits.tpm), _arg(limits.period_seconds)]
        reply = await self._run(self._check, entries, args)
        if reply is None:
            if book:
                return await self._fallback.check(entries, tokens)
            return await self._fallback.peek(entries, tokens)
        allowed, now, *tats = reply
        schedules: list[Schedules] = [
            (_optional_float(tats[i]), _optional_float(tats[i + 1])) for i in range(0, len(tats), 2)
        ]
        return decide(entries, schedules, float(now), tokens, allowed=bool(int(allowed)))

    def _now(self) -> str:
        """The time argument of a script: '' lets Redis use its own clock."""
        return "" if self._clock is None else repr(self._clock.now())

    async def _run(
        self, script: Script, entries: Sequence[Entry], args: Sequence[str]
    ) -> list[Any] | None:
        """Run one script on the subjects' keys; None when the caller must serve locally."""
        if not self._guard.use_redis():
            return None
        keys = [self._prefix + subject for subject, _ in entries]
        try:
            reply = await script(keys=keys, args=list(args))
        except REDIS_FAILURES as exc:
            self._guard.failed(exc)
            return None
        self._guard.succeeded()
        return reply if isinstance(reply, list) else [reply]


def client_limit_store(
    clock: Clock,
    redis: MultiplexedRedis | None,
    *,
    prefix: str = LIMIT,
    name: str = "client rate limits",
) -> ClientLimitStore:
    """Client limits: Redis-shared when a client is given, else in memory."""
    memory = MemoryClientLimits(clock)
    if redis is None:
        return memory
    guard = FailOpenGuard(name, clock.now)
    return RedisClientLimits(redis, fallback=memory, guard=guard, prefix=prefix)
