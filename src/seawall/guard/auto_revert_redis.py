"""Revert switches shared by every instance through Redis.

Keys, under the store's prefix:

* ``n:<subject>``: a hash of detection counts per window bucket (``b<bucket>``),
  expiring a window after the last detection;
* ``on``: a hash, per switched subject, of ``<since>|<until>``;
* ``ends``: a sorted set of switched subjects by the end of their cool-down, so a
  sweep finds the ended ones without scanning;
* ``ended``: a list of switches that ended and switched on again before a sweep saw
  them (their "off" event is still owed).

``record`` and ``sweep`` are Lua scripts, so counting, switching and claiming an
"off" event are atomic across instances: each event comes out of exactly one
instance. The arithmetic is ``auto_revert``'s, written again in Lua. Times are
Redis server time (``TIME``) unless a ``wall_clock`` is given (tests move time
without sleeping). The scripts touch global keys and a subject's key together:
this targets one Redis (or a primary with replicas), not Redis Cluster.

``active`` is asked on every request of a route with a policy, so each instance
keeps each answer for ``cache_seconds`` (never past the end of a cool-down): a
switch made elsewhere reaches this instance within that time; one made here, at once.

Failure mode: fails open to the state last seen, and counts locally. While Redis is
unavailable an instance keeps serving each switch as it last saw it (switched on
until the cool-down it knew of, or off), counts new detections on its own
``MemoryRevertSwitch`` (which starts empty, so it takes a full threshold of
detections on this instance alone), and can switch on by itself; those events say
``local=True``. The outage and the recovery are logged once each by the
``FailOpenGuard``. After Redis is back a route is switched when either Redis or the
local switch says so (the safe side), and the local switches' "off" events come out
of ``sweep`` like the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.guard.auto_revert import (
    WINDOW_BUCKETS,
    MemoryRevertSwitch,
    RevertPolicy,
    RevertSwitch,
    SwitchEvent,
    parse_subject,
    switch_subject,
    switch_tenant,
)
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import GUARD_REVERT
from seawall.stores.redis_lua import CLOCK, NOW
from seawall.stores.redis_multiplex import MultiplexedRedis, Script

# A bucket hash outlives its window by this long.
TTL_MARGIN_MS = 1000
# Owed "off" events kept at most (when no instance sweeps).
MAX_OWED = 1000
# How long an instance trusts an answer of ``active``.
CACHE_SECONDS = 1.0

_PRELUDE = (
    """
"""
    + CLOCK
    + """
local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

"""
    + NOW
    + """"""
)

# KEYS: the subject's bucket hash, the 'on' hash, the 'ends' zset, the 'ended' list.
# ARGV: now ('' = server time), subject, threshold, window, cool-down, buckets,
# TTL margin ms, owed events kept.
# Returns {1 if it switched on else 0, now, count, since ('' = off), until ('' = off)}.
_RECORD = (
    _PRELUDE
    + """
local subject = ARGV[2]
local threshold, window, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local buckets, margin, owed = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

local current = math.floor(now / (window / buckets))
redis.call('HINCRBY', KEYS[1], 'b' .. current, 1)
local fields = redis.call('HGETALL', KEYS[1])
local count, stale = 0, {}
for i = 1, #fields, 2 do
  if tonumber(string.sub(fields[i], 2)) > current - buckets then
    count = count + tonumber(fields[i + 1])
  else
    stale[#stale + 1] = fields[i]
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + margin)

local since, untl = nil, nil
local state = redis.call('HGET', KEYS[2], subject)
if state then
  local bar = string.find(state, '|', 1, true)
  since, untl = tonumber(string.sub(state, 1, bar - 1)), tonumber(string.sub(state, bar + 1))
end
if untl and untl <= now then
  -- Ended with nobody sweeping yet: its "off" event is owed to the next sweep.
  redis.call('RPUSH', KEYS[4], subject .. '|' .. state)
  redis.call('LTRIM', KEYS[4], -owed, -1)
  redis.call('HDEL', KEYS[2], subject)
  redis.call('ZREM', KEYS[3], subject)
  since, untl = nil, nil
end

local switched = 0
if count >= threshold then
  if since == nil then
    since = now
    switched = 1
  end
  untl = now + cooldown
  redis.call('HSET', KEYS[2], subject, fmt(since) .. '|' .. fmt(untl))
  redis.call('ZADD', KEYS[3], untl, subject)
end
return {switched, fmt(now), count, fmt(since), fmt(untl)}
"""
)

# KEYS: the 'on' hash. ARGV: now ('' = server time), subject.
# Returns {now, until ('' = off)}.
_ACTIVE = (
    _PRELUDE
    + """
local state = redis.call('HGET', KEYS[1], ARGV[2])
local untl = ''
if state then untl = string.sub(state, string.find(state, '|', 1, true) + 1) end
return {fmt(now), untl}
"""
)

# KEYS: the 'on' hash, the 'ends' zset, the 'ended' list. ARGV: now ('' = server time).
# Returns {now, then '<subject>|<since>|<until>' per switch that ended}.
_SWEEP = (
    _PRELUDE
    + """
local out = {fmt(now)}
for _, subject in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  local state = redis.call('HGET', KEYS[1], subject)
  if state then out[#out + 1] = subject .. '|' .. state end
  redis.call('HDEL', KEYS[1], subject)
  redis.call('ZREM', KEYS[2], subject)
end
for _, owed in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do out[#out + 1] = owed end
redis.call('DEL', KEYS[3])
return out
"""
)


@dataclass(frozen=True, slots=True)
class _Seen:
    """An answer of Redis, on this instance's clock."""

    active: bool
    # Until when it may be served without asking Redis again.
    fresh_until: float
    # When the cool-down Redis reported ends (None: it was off).
    active_until: float | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(value: Any) -> float | None:
    text = _text(value)
    return float(text) if text else None


def _ended_event(entry: Any) -> SwitchEvent:
    """An "off" event from a sweep's ``<subject>|<since>|<until>``."""
    subject, since, until = _text(entry).rsplit("|", 2)
    route, tenant = parse_subject(subject)
    return SwitchEvent(route, tenant, False, float(until), float(since))


class RedisRevertSwitch:
    """``RevertSwitch`` shared through Redis; on Redis failure, last seen state and ``fallback``."""

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        fallback: MemoryRevertSwitch,
        guard: FailOpenGuard,
        prefix: str = GUARD_REVERT,
        wall_clock: Callable[[], float] | None = None,
        local_clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.policies: Mapping[str, RevertPolicy] = fallback.policies
        self._fallback = fallback
        # Its counters (``outages``, ``local_calls``) are for metrics.
        self.guard = guard
        self._prefix = prefix
        self._wall_clock = wall_clock
        self._local_clock = local_clock
        self._cache_seconds = cache_seconds
        self._seen: dict[tuple[str, str | None], _Seen] = {}
        self._record = client.register_script(_RECORD)
        self._active = client.register_script(_ACTIVE)
        self._sweep = client.register_script(_SWEEP)

    async def record(self, route: str, tenant: str | None) -> SwitchEvent | None:
        """Count one detection; the "on" event when it switched the route."""
        policy = self.policies.get(route)
        if policy is None:
            return None
        who = switch_tenant(policy, tenant)
        subject = switch_subject(route, who)
        args = [
            self._now(),
            subject,
            str(policy.threshold),
            repr(policy.window_seconds),
            repr(policy.cooldown_seconds),
            str(WINDOW_BUCKETS),
            str(TTL_MARGIN_MS),
            str(MAX_OWED),
        ]
        keys = [self._key("n:" + subject), self._key("on"), self._key("ends"), self._key("ended")]
        reply = await self._run(self._record, keys, args)
        if reply is None:
            return await self._fallback.record(route, tenant)
        switched, now, count, since, until = reply
        self._remember(route, who, float(_text(now)), _optional(until))
        if _text(switched) != "1":
            return None
        at = float(_text(now))
        return SwitchEvent(route, who, True, at, _optional(since) or at, int(_text(count)))

    async def active(self, route: str, tenant: str | None) -> bool:
        """Whether the route is switched to its safe version for this tenant now."""
        policy = self.policies.get(route)
        if policy is None:
            return False
        who = switch_tenant(policy, tenant)
        if await self._fallback.active(route, tenant):
            return True
        seen = self._seen.get((route, who))
        local_now = self._local_clock()
        if seen is not None and local_now < seen.fresh_until:
            return seen.active
        reply = await self._run(
            self._active, [self._key("on")], [self._now(), switch_subject(route, who)]
        )
        if reply is None:
            # Stay as last seen: switched until the cool-down we knew of, or off.
            return (
                seen is not None and seen.active_until is not None and local_now < seen.active_until
            )
        now, until = reply
        return self._remember(route, who, float(_text(now)), _optional(until))

    async def sweep(self) -> list[SwitchEvent]:
        """The "off" events of switches whose cool-down ended, each from one instance only."""
        events: list[SwitchEvent] = []
        reply = await self._run(
            self._sweep, [self._key("on"), self._key("ends"), self._key("ended")], [self._now()]
        )
        if reply is not None:
            events = [_ended_event(entry) for entry in reply[1:]]
        local_now = self._local_clock()
        for key in [k for k, seen in self._seen.items() if local_now >= seen.fresh_until]:
            seen = self._seen[key]
            if seen.active_until is None or local_now >= seen.active_until:
                del self._seen[key]
        events += await self._fallback.sweep()
        return sorted(events, key=lambda event: event.at)

    def _remember(self, route: str, who: str | None, now: float, until: float | None) -> bool:
        """Keep Redis's answer for ``cache_seconds``; whether the switch is on."""
        local_now = self._local_clock()
        if until is None or until <= now:
            self._seen[(route, who)] = _Seen(False, local_now + self._cache_seconds, None)
            return False
        left = until - now
        fresh = local_now + min(self._cache_seconds, left)
        self._seen[(route, who)] = _Seen(True, fresh, local_now + left)
        return True

    def _key(self, name: str) -> str:
        return self._prefix + name

    def _now(self) -> str:
        """The time argument of a script: '' lets Redis use its own clock."""
        return "" if self._wall_clock is None else repr(self._wall_clock())

    async def _run(
        self, script: Script, keys: Sequence[str], args: Sequence[str]
    ) -> list[Any] | None:
        """One script call; None when the caller must serve locally."""
        if not self.guard.use_redis():
            return None
        try:
            reply = await script(keys=list(keys), args=list(args))
        except REDIS_FAILURES as exc:
            self.guard.failed(exc)
            return None
        self.guard.succeeded()
        return reply if isinstance(reply, list) else [reply]


def revert_switch(
    policies: Mapping[str, RevertPolicy],
    redis: MultiplexedRedis | None,
    *,
    wall_clock: Callable[[], float] = time.time,
    prefix: str = GUARD_REVERT,
) -> RevertSwitch:
    """Revert switches: Redis-shared when a client is given, else in memory."""
    if redis is None:
        return MemoryRevertSwitch(policies, wall_clock=wall_clock)
    memory = MemoryRevertSwitch(policies, wall_clock=wall_clock, local=True)
    guard = FailOpenGuard("guard revert switches", time.monotonic)
    return RedisRevertSwitch(redis, fallback=memory, guard=guard, prefix=prefix)
