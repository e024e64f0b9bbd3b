"""Reading router models: ``models: {auto: {router: {cheap, strong, threshold}}}``.

A router has no deployments, fallbacks or strategy of its own: the model it picks
brings them. Its targets must be chat models that are not routers themselves, and
no model may fall back to a router (fallbacks name what actually answers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seawall.config.schema import PublicModel
from seawall.routing.complexity import ComplexityPolicy

if TYPE_CHECKING:
    from seawall.config.load import _Reader

_ROUTER_KEYS = frozenset({"router", "owned_by"})


def is_router(spec: Any) -> bool:
    """Whether a ``models`` entry declares a router."""
    return isinstance(spec, dict) and "router" in spec


def read_router(reader: _Reader, key: str, name: str, spec: dict[str, Any]) -> PublicModel | None:
    """A router model from its entry; problems are reported through ``reader``."""
    for extra in sorted(set(spec) - _ROUTER_KEYS, key=str):
        reader.problem(
            f"{key}.{extra}",
            "a router model has no deployments, fallbacks or strategy of its own; "
            "set them on the models it routes to",
        )
    raw = reader.section(f"{key}.router", spec["router"])
    missing = [field for field in ("cheap", "strong") if not raw.get(field)]
    for field in missing:
        reader.problem(f"{key}.router.{field}", "is required (a public model name)")
    if missing:
        return None
    policy = reader.build(f"{key}.router", ComplexityPolicy, raw)
    if policy is None:
        return None
    return PublicModel(
        name=name,
        deployments=(),
        operation="chat",
        owned_by=str(spec.get("owned_by", "seawall")),
        router=policy,
    )


def check_routers(reader: _Reader, models: dict[str, PublicModel]) -> None:
    """Routers name existing chat models that are not routers; nothing falls back to one."""
    for name, model in models.items():
        if model.router is not None:
            for field, target in zip(("cheap", "strong"), model.router.targets(), strict=True):
                key = f"models.{name}.router.{field}"
                other = models.get(target)
                if other is None:
                    reader.problem(key, f"unknown model {target!r}; define it under models first")
                elif other.router is not None:
                    reader.problem(key, f"{target!r} is a router; name a model with deployments")
                elif other.operation != "chat":
                    reader.problem(key, f"{target!r} serves {other.operation}, not chat")
        targets = [("fallbacks", target) for target in model.fallbacks]
        if model.context_fallback is not None:
            targets.append(("context_fallback", model.context_fallback))
        for field, target in targets:
            routed = models.get(target)
            if routed is not None and routed.router is not None:
                reader.problem(
                    f"models.{name}.{field}",
                    f"{target!r} is a router; fall back to one of the models it routes to",
                )
