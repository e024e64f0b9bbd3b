"""Automatic revert: an attack wave switches a route to its safe prompt and guard profile.

Each route with a ``RevertPolicy`` has a switch per scope: per tenant (one tenant's
wave switches only that tenant's traffic) or global (every tenant's detections count
together and the switch applies to all). The pipeline calls ``record`` once per
request the guard flagged, blocked or held, and ``active`` on every request of the
route to pick the current or the safe version.

Counting: detections fall into ``WINDOW_BUCKETS`` buckets per window; the count is
the current bucket and the ones before it within the window, so a detection counts
for between ``window * (1 - 1/WINDOW_BUCKETS)`` and ``window`` seconds. Memory per
switch stays bounded however hard the wave.

Switching: a detection that brings the count to ``threshold`` or more is a crossing.
The first crossing switches the route on (safe version) until ``cooldown_seconds``
later; every further crossing pushes that end out again. Once the cool-down passes
with no crossing, ``active`` answers False again: the route is back on its current
version. Every switch, on and off, is a ``SwitchEvent`` the caller audit-logs and
counts: ``record`` returns the "on" event; the "off" events come from ``sweep``,
which the caller runs every second or so (each off event comes out once, from one
instance, when the switches are shared). A switch that ended and crossed again
before a sweep gives both events: the new "on" from ``record`` and the old "off"
from the next sweep.

Times are wall-clock seconds (``time.time`` by default; the Redis store uses Redis's
clock), so event times mean the same on every instance and in the audit log.
``MemoryRevertSwitch`` is the embedded store; ``auto_revert_redis.RedisRevertSwitch``
shares the switches between instances.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import quote, unquote

# Buckets per window: the count's resolution (a tenth of the window).
WINDOW_BUCKETS = 10
# The subject part of a switch that is global (or of requests with no tenant).
ANY_TENANT = "*"

Scope = Literal["tenant", "global"]
SCOPES: tuple[Scope, ...] = ("tenant", "global")


@dataclass(frozen=True, slots=True)
class RevertPolicy:
    """When a route switches to its safe version, and for how long."""

    # Detections within the window that switch the route.
    threshold: int = 20
    window_seconds: float = 60.0
    # How long the route stays switched after the last crossing.
    cooldown_seconds: float = 600.0
    # "tenant": one switch per tenant; "global": one switch for the whole route.
    scope: Scope = "tenant"

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 1_000_000:
            raise ValueError(f"threshold must be from 1 to 1000000, got {self.threshold!r}")
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds!r}")
        if not self.cooldown_seconds > 0:
            raise ValueError(f"cooldown_seconds must be positive, got {self.cooldown_seconds!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {list(SCOPES)}, got {self.scope!r}")


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """A route switched to its safe version (``active``) or back to its current one."""

    route: str
    # The tenant the switch is for; None for a global switch.
    tenant: str | None
    active: bool
    # When it happened (an "off" event's time is when the cool-down ended).
    at: float
    # When this switch went on (equal to ``at`` for an "on" event).
    since: float
    # Detections in the window at the crossing that switched it on; 0 for "off".
    detections: int = 0
    # Decided by this instance alone while Redis was unavailable.
    local: bool = False


class RevertSwitch(Protocol):
    """The revert switches of every route with a policy."""

    async def record(self, route: str, tenant: str | None) -> SwitchEvent | None:
        """Count one detection; the "on" event when it switched the route."""
        ...

    async def active(self, route: str, tenant: str | None) -> bool:
        """Whether the route is switched to its safe version for this tenant now."""
        ...

    async def sweep(self) -> list[SwitchEvent]:
        """The "off" events of switches whose cool-down ended (each reported once)."""
        ...


def switch_tenant(policy: RevertPolicy, tenant: str | None) -> str | None:
    """Whose switch a tenant's request uses: its own, or None (the global one)."""
    return tenant if policy.scope == "tenant" else None


def switch_subject(route: str, tenant: str | None) -> str:
    """A switch's name in a store: ``<route>:<tenant>`` percent-encoded, ``*`` for any."""
    who = ANY_TENANT if tenant is None else quote(tenant, safe="")
    return f"{quote(route, safe='')}:{who}"


def parse_subject(subject: str) -> tuple[str, str | None]:
    """The route and tenant a ``switch_subject`` names."""
    route, _, who = subject.partition(":")
    return unquote(route), None if who == ANY_TENANT else unquote(who)


def bucket_of(now: float, policy: RevertPolicy) -> int:
    """The window bucket ``now`` falls in."""
    return math.floor(now / (policy.window_seconds / WINDOW_BUCKETS))


def counts(bucket: int, current: int) -> bool:
    """Whether detections in ``bucket`` still count in ``current``'s window."""
    return bucket > current - WINDOW_BUCKETS


@dataclass(slots=True)
class _Switch:
    buckets: dict[int, int] = field(default_factory=dict)
    since: float | None = None
    until: float | None = None


class MemoryRevertSwitch:
    """``RevertSwitch`` kept in this process: exact for one instance.

    ``local`` marks its events as decided alone (it is the Redis store's fallback).
    """

    def __init__(
        self,
        policies: Mapping[str, RevertPolicy],
        *,
        wall_clock: Callable[[], float] = time.time,
        local: bool = False,
    ) -> None:
        self.policies = dict(policies)
        self._now = wall_clock
        self._local = local
        self._switches: dict[tuple[str, str | None], _Switch] = {}
        self._ended: list[SwitchEvent] = []

    def __len__(self) -> int:
        """Switches with state (idle ones are forgotten by ``sweep``)."""
        return len(self._switches)

    async def record(self, route: str, tenant: str | None) -> SwitchEvent | None:
        """Count one detection; the "on" event when it switched the route."""
        policy = self.policies.get(route)
        if policy is None:
            return None
        who = switch_tenant(policy, tenant)
        switch = self._switches.setdefault((route, who), _Switch())
        now = self._now()
        current = bucket_of(now, policy)
        switch.buckets[current] = switch.buckets.get(current, 0) + 1
        for bucket in [b for b in switch.buckets if not counts(b, current)]:
            del switch.buckets[bucket]
        if switch.until is not None and switch.until <= now:
            self._end(route, who, switch)
        count = sum(switch.buckets.values())
        if count < policy.threshold:
            return None
        switch.until = now + policy.cooldown_seconds
        if switch.since is not None:
            return None
        switch.since = now
        return SwitchEvent(route, who, True, now, now, count, self._local)

    async def active(self, route: str, tenant: str | None) -> bool:
        """Whether the route is switched to its safe version for this tenant now."""
        policy = self.policies.get(route)
        if policy is None or not self._switches:
            return False
        switch = self._switches.get((route, switch_tenant(policy, tenant)))
        return switch is not None and switch.until is not None and self._now() < switch.until

    async def sweep(self) -> list[SwitchEvent]:
        """The "off" events of switches whose cool-down ended; forgets idle switches."""
        now = self._now()
        for (route, who), switch in list(self._switches.items()):
            if switch.until is not None and switch.until <= now:
                self._end(route, who, switch)
            current = bucket_of(now, self.policies[route])
            idle = not any(counts(bucket, current) for bucket in switch.buckets)
            if idle and switch.until is None:
                del self._switches[(route, who)]
        ended, self._ended = self._ended, []
        return sorted(ended, key=lambda event: event.at)

    def _end(self, route: str, who: str | None, switch: _Switch) -> None:
        """Turn an expired switch off and keep its event for the next sweep."""
        assert switch.since is not None and switch.until is not None
        event = SwitchEvent(route, who, False, switch.until, switch.since, 0, self._local)
        self._ended.append(event)
        switch.since = switch.until = None
