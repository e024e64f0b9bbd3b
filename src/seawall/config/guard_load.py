"""Reading the ``guard:`` section: profiles, routes, prompt templates, strikes, revert."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from seawall.config.guard import (
    ACTIONS,
    Action,
    GuardProfile,
    GuardSettings,
    RoutePolicy,
    default_profiles,
)
from seawall.guard.auto_revert import RevertPolicy
from seawall.guard.output_scan import OutputPolicy
from seawall.guard.strikes import StrikePolicy
from seawall.guard.templates import PromptTemplate, PromptVersion, TemplateError

if TYPE_CHECKING:
    from seawall.config.load import _Reader

_SCALARS = ("enabled", "default_profile")


def read_guard(reader: _Reader, raw: Any, models: set[str], tiers: set[str]) -> GuardSettings:
    """The guard settings; problems are reported through ``reader``."""
    spec = dict(reader.section("guard", raw))
    profiles = default_profiles()
    for name, profile_raw in reader.section("guard.profiles", spec.pop("profiles", None)).items():
        profile = _profile(reader, f"guard.profiles.{name}", str(name), profile_raw)
        if profile is not None:
            profiles[str(name)] = profile
    prompts = _prompts(reader, spec.pop("prompts", None))
    routes: dict[str, RoutePolicy] = {}
    for model, route_raw in reader.section("guard.routes", spec.pop("routes", None)).items():
        key = f"guard.routes.{model}"
        if model not in models:
            reader.problem(key, f"unknown model {model!r}; define it under models")
        route_spec = dict(reader.section(key, route_raw))
        variables = route_spec.pop("variables", None) or {}
        if not isinstance(variables, dict):
            reader.problem(f"{key}.variables", "must be a mapping of names to values")
            variables = {}
        variables = {str(name): str(value) for name, value in variables.items()}
        route = reader.build(key, RoutePolicy, route_spec, variables=variables)
        if route is not None:
            _check_route(reader, key, route, profiles, prompts)
            routes[str(model)] = route
    tier_profiles: dict[str, str] = {}
    for tier, profile_name in reader.section("guard.tiers", spec.pop("tiers", None)).items():
        if tier not in tiers:
            reader.problem(f"guard.tiers.{tier}", f"unknown tier; expected one of {sorted(tiers)}")
        if profile_name not in profiles:
            reader.problem(f"guard.tiers.{tier}", _unknown_profile(profile_name, profiles))
        tier_profiles[str(tier)] = str(profile_name)
    strikes = _strikes(reader, spec.pop("strikes", None))
    revert = reader.build("guard.revert", RevertPolicy, spec.pop("revert", None))
    for name in sorted(set(spec) - set(_SCALARS)):
        reader.problem(f"guard.{name}", "unknown key")
        spec.pop(name)
    scalars = reader.dataclass_fields("guard", spec, GuardSettings)
    for name, profile in profiles.items():
        if profile.judge_model is not None and profile.judge_model not in models:
            reader.problem(
                f"guard.profiles.{name}.judge_model",
                f"unknown model {profile.judge_model!r}; define it under models",
            )
    settings = GuardSettings(
        profiles=profiles,
        tiers=tier_profiles,
        routes=routes,
        prompts=prompts,
        strikes=strikes,
        revert=revert or RevertPolicy(),
        **scalars,
    )
    if settings.default_profile not in profiles:
        reader.problem(
            "guard.default_profile", _unknown_profile(settings.default_profile, profiles)
        )
    return settings


def _profile(reader: _Reader, key: str, name: str, raw: Any) -> GuardProfile | None:
    spec = dict(reader.section(key, raw))
    base = default_profiles().get(name, GuardProfile(name))
    actions = dict(base.actions)
    for rule, action in reader.section(f"{key}.actions", spec.pop("actions", None)).items():
        if action not in ACTIONS:
            reader.problem(f"{key}.actions.{rule}", f"must be one of {', '.join(ACTIONS)}")
            continue
        actions[str(rule)] = cast(Action, action)
    output = base.output
    if "output" in spec:
        output_spec = dict(reader.section(f"{key}.output", spec.pop("output")))
        pii = output_spec.pop("pii", None)
        built = reader.build(f"{key}.output", OutputPolicy, output_spec)
        if built is not None:
            output = built
        if pii is not None:
            if not isinstance(pii, list) or not all(isinstance(kind, str) for kind in pii):
                reader.problem(f"{key}.output.pii", "must be a list of kinds")
            else:
                try:
                    output = replace(output, pii=frozenset(pii))
                except ValueError as exc:
                    reader.problem(f"{key}.output.pii", str(exc))
    fields = reader.dataclass_fields(key, spec, GuardProfile)
    fields.pop("name", None)
    if fields.get("default_action", base.default_action) not in ACTIONS:
        reader.problem(f"{key}.default_action", f"must be one of {', '.join(ACTIONS)}")
        return None
    return replace(base, actions=actions, output=output, **fields)


def _prompts(reader: _Reader, raw: Any) -> dict[str, PromptTemplate]:
    prompts: dict[str, PromptTemplate] = {}
    for name, versions_raw in reader.section("guard.prompts", raw).items():
        key = f"guard.prompts.{name}"
        versions: dict[str, PromptVersion] = {}
        for version, spec in reader.section(key, versions_raw).items():
            # A version is its system text, or {system: ..., variables: {...}}.
            spec = {"system": spec} if isinstance(spec, str) else spec
            if not isinstance(spec, dict) or not isinstance(spec.get("system"), str):
                reader.problem(f"{key}.{version}", "must be the system prompt's text")
                continue
            variables = spec.get("variables") or {}
            if not isinstance(variables, dict):
                reader.problem(f"{key}.{version}.variables", "must be a mapping")
                continue
            try:
                versions[str(version)] = PromptVersion(spec["system"], variables)
            except TemplateError as exc:
                reader.problem(f"{key}.{version}", str(exc))
        try:
            prompts[str(name)] = PromptTemplate(str(name), versions)
        except TemplateError as exc:
            reader.problem(key, str(exc))
    return prompts


def _check_route(
    reader: _Reader,
    key: str,
    route: RoutePolicy,
    profiles: dict[str, GuardProfile],
    prompts: dict[str, PromptTemplate],
) -> None:
    for field_name in ("profile", "safe_profile"):
        profile = getattr(route, field_name)
        if profile is not None and profile not in profiles:
            reader.problem(f"{key}.{field_name}", _unknown_profile(profile, profiles))
    if route.template is not None and route.template not in prompts:
        reader.problem(f"{key}.template", f"unknown template; expected one of {sorted(prompts)}")
        return
    template = prompts.get(route.template or "")
    for field_name in ("version", "safe_version"):
        version = getattr(route, field_name)
        if version is None:
            continue
        if template is None:
            reader.problem(f"{key}.{field_name}", "needs a template")
            continue
        try:
            template.render(version, route.variables)
        except TemplateError as exc:
            reader.problem(f"{key}.{field_name}", str(exc))
    if route.separation and template is None:
        reader.problem(f"{key}.separation", "needs a template: its system part leads the data")
    if template is not None:
        if route.version is None:
            reader.problem(f"{key}.version", "a route with a template names its version")
        for name in template.unused(route.variables):
            reader.problem(f"{key}.variables.{name}", "no version of the template uses it")


def _strikes(reader: _Reader, raw: Any) -> StrikePolicy:
    spec = dict(reader.section("guard.strikes", raw))
    blocks = spec.pop("block_seconds", None)
    settings = reader.build("guard.strikes", StrikePolicy, spec) or StrikePolicy()
    if blocks is not None:
        if (
            not isinstance(blocks, list)
            or not blocks
            or not all(isinstance(b, int | float) and b > 0 for b in blocks)
        ):
            reader.problem("guard.strikes.block_seconds", "must be a list of positive seconds")
        else:
            settings = replace(settings, block_seconds=tuple(float(b) for b in blocks))
    return settings


def _unknown_profile(name: object, profiles: dict[str, GuardProfile]) -> str:
    return f"unknown profile {name!r}; expected one of {sorted(profiles)}"
