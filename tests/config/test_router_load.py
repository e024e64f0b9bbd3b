"""Router models in the configuration: parsed into a policy, refused when they cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import ConfigError, Settings, load_settings
from seawall.routing.complexity import ComplexityPolicy

DEPLOYMENTS = """
local_models: false
deployments:
  small: {provider: openai, model: gpt-4o-mini, api_key: sk-x}
  big: {provider: openai, model: gpt-4o, api_key: sk-x}
  embed: {provider: openai, model: text-embedding-3-small, api_key: sk-x}
"""


def load(tmp_path: Path, models: str) -> Settings:
    path = tmp_path / "seawall.yaml"
    path.write_text(DEPLOYMENTS + models)
    return load_settings(path, {})


def problems(tmp_path: Path, models: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, models)
    return "\n".join(caught.value.problems)


def test_a_router_model_routes_between_two_public_models(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
models:
  auto:
    router: {cheap: small-model, strong: big-model, threshold: 0.6}
    owned_by: platform-team
  small-model: [small]
  big-model: {deployments: [big], fallbacks: [small-model]}
""",
    )
    auto = settings.models["auto"]
    assert auto.router == ComplexityPolicy(cheap="small-model", strong="big-model", threshold=0.6)
    assert (auto.deployments, auto.operation, auto.owned_by) == ((), "chat", "platform-team")
    # What can answer a request to auto: the deployments of the models it routes to.
    assert [d.name for d in settings.deployments_for(auto)] == ["small", "big"]


def test_the_threshold_defaults_to_one_half(tmp_path: Path) -> None:
    models = """
models:
  small-model: [small]
  big-model: [big]
  auto: {router: {cheap: small-model, strong: big-model}}
"""
    router = load(tmp_path, models).models["auto"].router
    assert router is not None and router.threshold == 0.5


def test_targets_must_exist_serve_chat_and_not_be_routers(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
models:
  small-model: [small]
  embedder: [embed]
  auto: {router: {cheap: small-model, strong: ghost}}
  twice: {router: {cheap: auto, strong: embedder}}
""",
    )
    path = tmp_path / "seawall.yaml"
    for expected in (
        f"{path}: models.auto.router.strong: unknown model 'ghost'",
        f"{path}: models.twice.router.cheap: 'auto' is a router",
        f"{path}: models.twice.router.strong: 'embedder' serves embeddings, not chat",
    ):
        assert expected in found


def test_bad_policies_name_their_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
models:
  small-model: [small]
  big-model: [big]
  high: {router: {cheap: small-model, strong: big-model, threshold: 1.5}}
  negative: {router: {cheap: small-model, strong: big-model, threshold: -1}}
  half: {router: {cheap: small-model}}
  same: {router: {cheap: small-model, strong: small-model}}
  typo: {router: {cheap: small-model, strong: big-model, treshold: 0.4}}
""",
    )
    path = tmp_path / "seawall.yaml"
    for expected in (
        f"{path}: models.high.router: threshold must be between 0 and 1, got 1.5",
        f"{path}: models.negative.router.threshold: must be a non-negative float",
        f"{path}: models.half.router.strong: is required",
        f"{path}: models.same.router: cheap and strong must be different models",
        f"{path}: models.typo.router.treshold: unknown key",
    ):
        assert expected in found


def test_a_router_has_no_deployments_or_fallbacks_of_its_own(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
models:
  small-model: [small]
  big-model: {deployments: [big], fallbacks: [auto]}
  auto:
    router: {cheap: small-model, strong: big-model}
    deployments: [small]
    fallbacks: [small-model]
""",
    )
    path = tmp_path / "seawall.yaml"
    for expected in (
        f"{path}: models.auto.deployments: a router model has no deployments",
        f"{path}: models.auto.fallbacks: a router model has no deployments",
        f"{path}: models.big-model.fallbacks: 'auto' is a router; fall back to one of",
    ):
        assert expected in found
