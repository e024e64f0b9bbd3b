"""Circuit breakers shared by every Seawall instance through Redis.

Failure mode: fails open. A breaker protects callers from a failing deployment; it is
not a gate that must hold. When Redis is unreachable, refusing every call would turn a
Redis outage into a full outage, so each instance answers from its own
``MemoryBreakerStore`` (the ``FailOpenGuard`` logs the outage once and keeps calls off
Redis for a while) and returns to the shared state when Redis answers again.

Each deployment's breaker is one hash at ``prefix + deployment`` (one key, so the
scripts suit Redis Cluster too). Fields: ``state`` (absent while CLOSED), ``open_until``,
``period``, ``probes`` (expiry times of probe slots handed out, space-separated), ``ok``
(probe successes this round), and the window's counts ``s<bucket>``/``f<bucket>``. Every
``allow`` and ``record`` is one Lua script run by EVALSHA and reads Redis's clock
(``TIME``), so instances whose clocks disagree still agree on the breaker. A CLOSED
breaker's hash expires one window after its last outcome; a tripped one lives
``2 * max_open_seconds`` past its last change, long enough to remember its open period
across a quiet half-open round. Closing a breaker deletes its hash.

With a ``ClearView`` (as ``shared_state`` builds it), a breaker found closed by any
reply is allowed from memory for the view's ``fresh_seconds`` (0.1 s): the request
path makes no Redis call while a deployment is healthy, and a breaker tripped by
another instance reaches this one within that time. Outcomes always go to Redis.
"""

from __future__ import annotations

import math
from typing import Any

# WINDOW_BUCKETS: both stores slide their windows in the same steps.
from seawall.resilience.circuit_breaker import (
    WINDOW_BUCKETS,
    BreakerSettings,
    BreakerState,
    MemoryBreakerStore,
    Permit,
)
from seawall.resilience.clear_view import ClearView
from seawall.stores.fail_open import REDIS_FAILURES, FailOpenGuard
from seawall.stores.redis_keys import BREAKER
from seawall.stores.redis_multiplex import MultiplexedRedis

# Shared by every script: Redis's clock in seconds, and a float that survives a string.
_PRELUDE = """
local function fmt(x) return string.format('%.6f', x) end
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local key = KEYS[1]
"""

# ARGV: open_seconds, half_open_probes, tripped_ttl_ms.
# Returns {allowed (0/1), state, probe (0/1), retry_in}.
_ALLOW = (
    _PRELUDE
    + """
local fields = redis.call('HMGET', key, 'state', 'open_until', 'probes', 'ok')
local state = fields[1]
if not state then
  return {1, 'closed', 0, '0'}
end
local probes_text = fields[3] or ''
local ok = tonumber(fields[4] or '0')
if state == 'open' then
  local open_until = tonumber(fields[2])
  if now < open_until then
    return {0, 'open', 0, fmt(open_until - now)}
  end
  redis.call('HSET', key, 'state', 'half_open')
  probes_text = ''
  ok = 0
end
local probes = {}
local earliest = nil
for text in string.gmatch(probes_text, '%S+') do
  local expiry = tonumber(text)
  if expiry > now then
    table.insert(probes, text)
    if earliest == nil or expiry < earliest then earliest = expiry end
  end
end
if #probes + ok < tonumber(ARGV[2]) then
  table.insert(probes, fmt(now + tonumber(ARGV[1])))
  redis.call('HSET', key, 'probes', table.concat(probes, ' '), 'ok', ok)
  redis.call('PEXPIRE', key, ARGV[3])
  return {1, 'half_open', 1, '0'}
end
redis.call('HSET', key, 'probes', table.concat(probes, ' '))
return {0, 'half_open', 0, fmt((earliest or now) - now)}
"""
)

# ARGV: success (0/1), probe (0/1), bucket_seconds, buckets, min_requests, failure_rate,
# open_seconds, max_open_seconds, half_open_probes, closed_ttl_ms, tripped_ttl_ms.
# Returns the state after the outcome.
_RECORD = (
    _PRELUDE
    + """
local success = ARGV[1] == '1'
local probe = ARGV[2] == '1'
local fields = redis.call('HMGET', key, 'state', 'open_until', 'period', 'probes', 'ok')
local state = fields[1]

local function trip(period)
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'open', 'period', fmt(period), 'open_until', fmt(now + period))
  redis.call('PEXPIRE', key, ARGV[11])
  return 'open'
end

if not state then
  local current = math.floor(now / tonumber(ARGV[3]))
  local oldest = current - tonumber(ARGV[4]) + 1
  redis.call('HINCRBY', key, (success and 's' or 'f') .. current, 1)
  redis.call('PEXPIRE', key, ARGV[10])
  local total, failed = 0, 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name = all[i]
    if tonumber(string.sub(name, 2)) < oldest then
      redis.call('HDEL', key, name)
    else
      local count = tonumber(all[i + 1])
      total = total + count
      if string.sub(name, 1, 1) == 'f' then failed = failed + count end
    end
  end
  -- Judged on failures only: a success never opens a breaker.
  if not success and total >= tonumber(ARGV[5]) and failed / total >= tonumber(ARGV[6]) then
    return trip(tonumber(ARGV[7]))
  end
  return 'closed'
end

if state == 'open' then
  if now >= tonumber(fields[2]) then return 'half_open' end
  return 'open'
end
if not probe then
  return 'half_open'
end
if not success then
  return trip(math.min(tonumber(fields[3]) * 2, tonumber(ARGV[8])))
end
-- Outcomes carry no probe id; the earliest outstanding slot stands for this one.
local probes = {}
local earliest = nil
for text in string.gmatch(fields[4] or '', '%S+') do
  table.insert(probes, text)
  if earliest == nil or tonumber(text) < tonumber(probes[earliest]) then
    earliest = #probes
  end
end
if earliest then table.remove(probes, earliest) end
local ok = tonumber(fields[5] or '0') + 1
if ok >= tonumber(ARGV[9]) then
  redis.call('DEL', key)
  return 'closed'
end
redis.call('HSET', key, 'ok', ok, 'probes', table.concat(probes, ' '))
redis.call('PEXPIRE', key, ARGV[11])
return 'half_open'
"""
)

# Reads only: OPEN past its period reads HALF_OPEN without moving it.
_STATE = (
    _PRELUDE
    + """
local fields = redis.call('HMGET', key, 'state', 'open_until')
local state = fields[1]
if not state then return 'closed' end
if state == 'open' and now >= tonumber(fields[2]) then return 'half_open' end
return state
"""
)


class RedisBreakerStore:
    """Breakers in Redis, shared by all instances; fails open to ``fallback``."""

    def __init__(
        self,
        client: MultiplexedRedis,
        *,
        fallback: MemoryBreakerStore,
        guard: FailOpenGuard,
        view: ClearView | None = None,
        prefix: str = BREAKER,
    ) -> None:
        self._fallback = fallback
        self._guard = guard
        # Closed breakers, as last seen: ``allow`` answers them without Redis.
        self._view = view
        self._prefix = prefix
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        self._state = client.register_script(_STATE)

    async def allow(self, deployment: str, settings: BreakerSettings) -> Permit:
        """Whether a call to ``deployment`` may go now (HALF_OPEN: as a probe)."""
        if self._view is not None and self._view.clear(deployment):
            return CLOSED
        if not self._guard.use_redis():
            return await self._fallback.allow(deployment, settings)
        args = [settings.open_seconds, settings.half_open_probes, _tripped_ttl_ms(settings)]
        try:
            allowed, state, probe, retry_in = await self._allow(
                keys=[self._prefix + deployment], args=args
            )
        except REDIS_FAILURES as exc:
            self._guard.failed(exc)
            return await self._fallback.allow(deployment, settings)
        self._guard.succeeded()
        permit = Permit(
            allowed=bool(allowed),
            state=_state(state),
            probe=bool(probe),
            retry_in=float(retry_in),
        )
        self._saw(deployment, permit.state)
        return permit

    async def record(
        self, deployment: str, settings: BreakerSettings, *, success: bool, probe: bool = False
    ) -> BreakerState:
        """Count the outcome of a call that ``allow`` let through; the state after it."""
        if not self._guard.use_redis():
            return await self._fallback.record(deployment, settings, success=success, probe=probe)
        args: list[Any] = [
            int(success),
            int(probe),
            repr(settings.window_seconds / WINDOW_BUCKETS),
            WINDOW_BUCKETS,
            settings.min_requests,
            repr(settings.failure_rate),
            repr(settings.open_seconds),
            repr(settings.max_open_seconds),
            settings.half_open_probes,
            math.ceil(settings.window_seconds * (WINDOW_BUCKETS + 1) / WINDOW_BUCKETS * 1000),
            _tripped_ttl_ms(settings),
        ]
        try:
            state = await self._record(keys=[self._prefix + deployment], args=args)
        except REDIS_FAILURES as exc:
            self._guard.failed(exc)
            return await self._fallback.record(deployment, settings, success=success, probe=probe)
        self._guard.succeeded()
        after = _state(state)
        self._saw(deployment, after)
        return after

    def _saw(self, deployment: str, state: BreakerState) -> None:
        if self._view is not None:
            self._view.saw(deployment, state is BreakerState.CLOSED)

    async def state(self, deployment: str, settings: BreakerSettings) -> BreakerState:
        """The state the next ``allow`` will find (OPEN past its period reads HALF_OPEN)."""
        if not self._guard.use_redis():
            return await self._fallback.state(deployment, settings)
        try:
            state = await self._state(keys=[self._prefix + deployment])
        except REDIS_FAILURES as exc:
            self._guard.failed(exc)
            return await self._fallback.state(deployment, settings)
        self._guard.succeeded()
        return _state(state)


# What ``allow`` answers for a breaker found closed: go, not a probe.
CLOSED = Permit(allowed=True, state=BreakerState.CLOSED)


def _tripped_ttl_ms(settings: BreakerSettings) -> int:
    """How long a tripped breaker's hash outlives its last change."""
    return math.ceil(2 * settings.max_open_seconds * 1000)


def _state(raw: bytes | str) -> BreakerState:
    """A state name as the scripts return it (bytes unless the client decodes)."""
    return BreakerState(raw.decode() if isinstance(raw, bytes) else raw)
