"""The candidates of a request: its model's deployments, then its fallback models'."""

from __future__ import annotations

from seawall.config.schema import Deployment, PublicModel
from seawall.pipeline.candidates import CandidatePlanner
from seawall.resilience.balancer import Balancer
from tests.resilience.fake_clock import FakeClock


def deployment(name: str) -> Deployment:
    return Deployment(name=name, provider="openai", model=name)


def planner(models: list[PublicModel]) -> CandidatePlanner:
    usable = {m.name: tuple(deployment(d) for d in m.deployments) for m in models}
    return CandidatePlanner({m.name: m for m in models}, usable, Balancer(FakeClock()))


def names(plan: object) -> list[tuple[str, str]]:
    return [(c.model.name, c.deployment.name) for c in plan]  # type: ignore[attr-defined]


def test_fallback_models_follow_in_order_each_deployment_once() -> None:
    models = [
        PublicModel("gpt", ("east", "west"), fallbacks=("claude", "local")),
        PublicModel("claude", ("anthropic", "west")),
        PublicModel("local", ("smollm2",)),
    ]
    assert names(planner(models).plan(models[0])) == [
        ("gpt", "east"),
        ("gpt", "west"),
        ("claude", "anthropic"),
        ("local", "smollm2"),
    ]


def test_fallback_cycles_end_instead_of_looping() -> None:
    models = [
        PublicModel("a", ("da",), fallbacks=("b",)),
        PublicModel("b", ("db",), fallbacks=("a",)),
    ]
    assert names(planner(models).plan(models[1])) == [("b", "db"), ("a", "da")]


def test_the_context_fallback_is_only_offered_on_request() -> None:
    models = [
        PublicModel("small", ("s",), context_fallback="large"),
        PublicModel("large", ("l",), fallbacks=("local",)),
        PublicModel("local", ("smollm2",)),
    ]
    plans = planner(models)
    assert names(plans.plan(models[0])) == [("small", "s")]
    assert names(plans.context_fallback(models[0])) == [("large", "l"), ("local", "smollm2")]
    assert plans.context_fallback(models[2]) == []
