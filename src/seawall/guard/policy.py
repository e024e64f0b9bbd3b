"""Which guard profile and prompt a request gets: its route's, its tier's or the
default, and the route's safe ones while an attack wave has reverted it."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.config.guard import GuardProfile, GuardSettings, RoutePolicy
from seawall.guard.auto_revert import RevertPolicy, RevertSwitch, switch_tenant

_NO_ROUTE = RoutePolicy()


@dataclass(frozen=True, slots=True)
class Applied:
    """The guard policy one request runs under."""

    route: str
    profile: GuardProfile
    # The template's system prompt to send first (None: the application's prompt as is).
    system: str | None
    separation: bool
    # The route runs its safe version because of an attack wave.
    reverted: bool
    # Whose revert switch the request's detections count toward (None: none).
    revertible: bool


class PolicyResolver:
    """Resolves each request's profile and prompt; reads the revert switches."""

    def __init__(
        self,
        settings: GuardSettings,
        switch: RevertSwitch | None,
        policy: RevertPolicy,
    ) -> None:
        self._settings = settings
        self._switch = switch
        self._policy = policy
        # Rendered system prompts by (template, version, variables): rendered once.
        self._rendered: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}

    def revertible(self, route: str) -> bool:
        """Whether ``route`` has something safer to switch to."""
        policy = self._settings.routes.get(route)
        return policy is not None and (
            policy.safe_profile is not None or policy.safe_version is not None
        )

    def _system(self, policy: RoutePolicy, version: str) -> str:
        assert policy.template is not None
        key = (policy.template, version, tuple(sorted(policy.variables.items())))
        text = self._rendered.get(key)
        if text is None:
            template = self._settings.prompts[policy.template]
            text = self._rendered[key] = template.render(version, policy.variables).text
        return text

    async def resolve(self, route: str, tier: str | None, tenant: str | None) -> Applied:
        """The policy of a request to public model ``route`` from a key of ``tier``."""
        settings = self._settings
        policy = settings.routes.get(route, _NO_ROUTE)
        revertible = self._switch is not None and self.revertible(route)
        reverted = False
        if revertible and self._switch is not None:
            reverted = await self._switch.active(route, switch_tenant(self._policy, tenant))
        name = policy.profile or settings.tiers.get(tier or "") or settings.default_profile
        version = policy.version
        if reverted:
            name = policy.safe_profile or name
            version = policy.safe_version or version
        system = None
        if policy.template is not None and version is not None:
            system = self._system(policy, version)
        return Applied(
            route=route,
            profile=settings.profiles[name],
            system=system,
            separation=policy.separation,
            reverted=reverted,
            revertible=revertible,
        )
