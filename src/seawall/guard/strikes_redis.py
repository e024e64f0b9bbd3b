"""Per-user strikes shared by every instance through Redis.

Failure mode: fails open. Strikes contain one attacker; they must not turn a Redis
outage into an outage for every user. While Redis is unavailable each instance
counts strikes on its own ``MemoryStrikes`` (so a user who keeps attacking one
instance is still blocked there), blocks recorded in Redis are not seen, and
nothing is merged back when Redis returns. Detections are still written to the
detection log (SQL) meanwhile, so nothing is lost for review.

Each subject is one hash ``<prefix>user:<tenant>:<user>`` (``strike_subject``) with the fields of
``strikes.StrikeRecord`` (``t``: strike times joined by commas, ``c``, ``p``, ``l``,
``u``), changed by one Lua script that runs ``StrikeRecord``'s steps again, so a
read-modify-write is atomic across instances. The hash expires when it would mean
nothing any more. Times are Redis server time (``TIME``) unless a ``wall_clock`` is
given (tests move time without sleeping).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from seawall.guard.strikes import (
    MemoryStrikes,
    StrikePolicy,
    StrikeState,
    StrikeStore,
    strike_subject,
)
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import GUARD_STRIKES
from seawall.stores.redis_lua import CLOCK, NOW
from seawall.stores.redis_multiplex import MultiplexedRedis

# A hash outlives its meaning by this long (a key needs no exact expiry).
TTL_MARGIN_MS = 1000

Operation = Literal["add", "state", "forgive"]

# KEYS: the subject's hash. ARGV: now ('' = server time), operation, n, max_strikes,
# window seconds, forget_blocks seconds, kept strikes, then the block durations.
# Returns {now, strikes, level, until, started (1/0)}; numbers as strings (Redis
# would truncate Lua numbers to integers).
_STRIKE = (
    f"local TTL_MARGIN_MS = {TTL_MARGIN_MS}\n"
    + """
"""
    + CLOCK
    + """local function fmt(x) return string.format('%.17g', x) end

"""
    + NOW
    + """local op, n = ARGV[2], tonumber(ARGV[3])
local max_strikes, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local forget, kept_max = tonumber(ARGV[6]), tonumber(ARGV[7])
local blocks = {}
for i = 8, #ARGV do blocks[#blocks + 1] = tonumber(ARGV[i]) end

local key = KEYS[1]
local f = redis.call('HMGET', key, 't', 'c', 'p', 'l', 'u')
local times = {}
if f[1] then
  for s in string.gmatch(f[1], '[^,]+') do times[#times + 1] = tonumber(s) end
end
local consumed, previous = opt(f[2]) or 0, opt(f[3]) or 0
local level, untl = opt(f[4]) or 0, opt(f[5]) or 0

local function drop_oldest(count)
  local rest = {}
  for i = count + 1, #times do rest[#rest + 1] = times[i] end
  times = rest
  consumed = math.max(0, consumed - count)
  previous = math.max(0, previous - count)
end

-- StrikeRecord.settle
local dropped = 0
while dropped < #times and times[dropped + 1] <= now - window do dropped = dropped + 1 end
if dropped > 0 then drop_oldest(dropped) end
if untl > 0 and now >= untl + forget then
  level = 0
  untl = 0
end

local started = 0
if op == 'add' then
  for _ = 1, n do times[#times + 1] = now end
  if #times - consumed >= max_strikes then
    previous = consumed
    consumed = #times
    local block = blocks[math.min(level + 1, #blocks)]
    untl = math.max(untl, now + block)
    level = level + 1
    started = 1
  end
  if #times > kept_max then drop_oldest(#times - kept_max) end
elseif op == 'forgive' then
  local kept = math.max(0, #times - n)
  for i = #times, kept + 1, -1 do times[i] = nil end
  if kept < consumed then
    consumed = math.min(previous, kept)
    previous = consumed
    level = math.max(0, level - 1)
    if untl > now then untl = now end
    if level == 0 then untl = 0 end
  end
end

if op ~= 'state' then
  local expires = nil
  if #times > 0 then expires = times[#times] + window end
  if untl > 0 and (expires == nil or untl + forget > expires) then expires = untl + forget end
  if expires == nil or expires <= now then
    redis.call('DEL', key)
  else
    local joined = {}
    for i, t in ipairs(times) do joined[i] = fmt(t) end
    redis.call('HSET', key, 't', table.concat(joined, ','), 'c', consumed, 'p', previous,
      'l', level, 'u', fmt(untl))
    redis.call('PEXPIRE', key, math.ceil((expires - now) * 1000) + TTL_MARGIN_MS)
  end
end
return {fmt(now), tostring(#times - consumed), tostring(level), fmt(untl), started}
"""
)


class RedisStrikes:
    """``StrikeStore`` shared through Redis; on Redis failure it serves from ``fallback``."""

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        policy: StrikePolicy,
        fallback: MemoryStrikes,
        guard: FailOpenGuard,
        prefix: str = GUARD_STRIKES,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy
        self._fallback = fallback
        # Its counters (``outages``, ``local_calls``) are for metrics.
        self.guard = guard
        self._prefix = prefix
        self._wall_clock = wall_clock
        self._script = client.register_script(_STRIKE)
        self._policy_args = [
            str(policy.max_strikes),
            repr(policy.window_seconds),
            repr(policy.forget_blocks_seconds),
            str(policy.kept_strikes),
            *(repr(seconds) for seconds in policy.block_seconds),
        ]

    async def add(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Count ``n`` strikes against the user now; may start a block."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n!r}")
        state = await self._run("add", tenant, user, n)
        return state if state is not None else await self._fallback.add(tenant, user, n)

    async def state(self, tenant: str, user: str) -> StrikeState:
        """Where the user stands now (changes nothing)."""
        state = await self._run("state", tenant, user, 0)
        return state if state is not None else await self._fallback.state(tenant, user)

    async def forgive(self, tenant: str, user: str, n: int = 1) -> StrikeState:
        """Take back the user's ``n`` newest strikes; may lift the block they caused."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n!r}")
        state = await self._run("forgive", tenant, user, n)
        return state if state is not None else await self._fallback.forgive(tenant, user, n)

    async def _run(
        self, operation: Operation, tenant: str, user: str, n: int
    ) -> StrikeState | None:
        """One script call; None when the caller must serve locally."""
        if not self.guard.use_redis():
            return None
        now = "" if self._wall_clock is None else repr(self._wall_clock())
        args = [now, operation, str(n), *self._policy_args]
        try:
            reply = await self._script(
                keys=[self._prefix + strike_subject(tenant, user)], args=args
            )
        except REDIS_FAILURES as exc:
            self.guard.failed(exc)
            return None
        self.guard.succeeded()
        return _state(reply)


def _state(reply: Any) -> StrikeState:
    """The script's reply as a ``StrikeState``."""
    now, strikes, level, until, started = (_text(field) for field in reply)
    as_of, ends = float(now), float(until)
    return StrikeState(
        strikes=int(strikes),
        blocks=int(level),
        blocked_until=ends if ends > as_of else None,
        as_of=as_of,
        block_started=started == "1",
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def strike_store(
    policy: StrikePolicy,
    redis: MultiplexedRedis | None,
    *,
    wall_clock: Callable[[], float] = time.time,
    prefix: str = GUARD_STRIKES,
) -> StrikeStore:
    """Strikes: Redis-shared when a client is given, else in memory."""
    memory = MemoryStrikes(policy, wall_clock=wall_clock)
    if redis is None:
        return memory
    guard = FailOpenGuard("guard strikes", time.monotonic)
    return RedisStrikes(redis, policy=policy, fallback=memory, guard=guard, prefix=prefix)
