"""A request's guard policy: route over tier over default, and the route's safe
version while an attack wave has reverted it (with an injected clock)."""

from __future__ import annotations

import asyncio

from seawall.config.guard import GuardSettings, RoutePolicy, default_profiles
from seawall.guard.auto_revert import MemoryRevertSwitch, RevertPolicy
from seawall.guard.detection import Detection
from seawall.guard.policy import PolicyResolver
from seawall.guard.templates import PromptTemplate, PromptVersion
from seawall.pipeline.guard import strongest

REVERT = RevertPolicy(threshold=3, window_seconds=60, cooldown_seconds=600, scope="tenant")
SETTINGS = GuardSettings(
    profiles=default_profiles(),
    tiers={"guest": "strict"},
    routes={
        "bot": RoutePolicy(
            profile="standard",
            safe_profile="strict",
            template="support",
            version="v2",
            safe_version="v1",
            variables={"company": "Acme"},
        )
    },
    prompts={
        "support": PromptTemplate(
            "support",
            {
                "v1": PromptVersion("Only orders, {{ company }}."),
                "v2": PromptVersion("Help {{ company }}."),
            },
        )
    },
    revert=REVERT,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_route_decides_then_the_tier_then_the_default() -> None:
    resolver = PolicyResolver(SETTINGS, None, REVERT)
    routed = asyncio.run(resolver.resolve("bot", "guest", "acme"))
    assert routed.profile.name == "standard" and routed.system == "Help Acme."
    assert asyncio.run(resolver.resolve("other", "guest", "acme")).profile.name == "strict"
    unrouted = asyncio.run(resolver.resolve("other", "verified", "acme"))
    assert unrouted.profile.name == "standard" and unrouted.system is None


def test_an_attack_wave_reverts_the_route_for_its_tenant_until_the_cool_down_ends() -> None:
    async def scenario() -> None:
        clock = Clock()
        switch = MemoryRevertSwitch({"bot": REVERT}, wall_clock=clock)
        resolver = PolicyResolver(SETTINGS, switch, REVERT)
        events = [await switch.record("bot", "acme") for _ in range(3)]
        assert [e is not None and e.active for e in events] == [False, False, True]
        reverted = await resolver.resolve("bot", "verified", "acme")
        assert reverted.reverted and reverted.profile.name == "strict"
        assert reverted.system == "Only orders, Acme."
        # Another tenant's requests keep the current version.
        other = await resolver.resolve("bot", "verified", "globex")
        assert not other.reverted and other.system == "Help Acme."
        clock.now += 601
        ended = await switch.sweep()
        assert [(e.route, e.tenant, e.active) for e in ended] == [("bot", "acme", False)]
        back = await resolver.resolve("bot", "verified", "acme")
        assert not back.reverted and back.profile.name == "standard"

    asyncio.run(scenario())


def test_the_strongest_action_wins() -> None:
    resolver = PolicyResolver(SETTINGS, None, REVERT)
    strict = asyncio.run(resolver.resolve("other", "guest", None))
    found = [Detection("unicode.zero_width", 0.9), Detection("injection.role_marker", 0.9)]
    assert strongest(strict, found) == "block"
    assert strongest(strict, found[:1]) == "flag"
