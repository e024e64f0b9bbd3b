"""Configuration: embedded default, YAML with ${VAR}, overrides, and every problem reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import ConfigError, load_settings


def test_no_file_is_the_embedded_default_with_local_models() -> None:
    settings = load_settings(None, {})
    assert set(settings.models) == {"smollm2-135m-instruct", "all-minilm-l6-v2-embed"}
    assert settings.models["all-minilm-l6-v2-embed"].operation == "embeddings"
    assert settings.stores.database_url.startswith("sqlite:///")
    assert settings.stores.redis_url is None
    assert settings.master_key is None


def test_provider_keys_in_the_environment_add_their_models() -> None:
    settings = load_settings(None, {"OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a"})
    assert "gpt-4o-mini" in settings.models
    assert settings.deployments["openai-gpt-4o-mini"].api_key == "sk-o"
    assert settings.models["text-embedding-3-small"].operation == "embeddings"
    assert settings.deployments["anthropic-claude-sonnet-4-0"].provider == "anthropic"


def test_yaml_with_interpolation_and_ordered_deployments(tmp_path: Path) -> None:
    path = tmp_path / "seawall.yaml"
    path.write_text(
        """
master_key: ${MASTER}
stores: {database_url: "postgresql://db/seawall", redis_url: "redis://cache:6379/0"}
deployments:
  primary:
    provider: openai
    model: gpt-4o
    api_key: ${OPENAI_KEY}
    prices: {input_per_mtok: 2.5, output_per_mtok: 10}
    timeouts: {connect: 1, first_byte: 9}
  vllm:
    provider: openai
    model: meta-llama/Llama-3.1-8B-Instruct
    api_base: http://vllm:8000/v1
    api_key: ${VLLM_KEY:-}
models:
  smart: [primary, vllm]
"""
    )
    settings = load_settings(
        path, {"MASTER": "m" * 20, "OPENAI_KEY": "sk-real", "SEAWALL_PORT": "9999"}
    )
    assert settings.master_key == "m" * 20
    assert settings.server.port == 9999
    assert settings.models["smart"].deployments == ("primary", "vllm")
    primary = settings.deployments["primary"]
    assert primary.api_key == "sk-real"
    assert primary.prices is not None and primary.prices.output_per_mtok == 10
    assert primary.timeouts.connect == 1 and primary.timeouts.first_byte == 9
    assert settings.deployments["vllm"].api_key is None
    assert settings.stores.redis_url == "redis://cache:6379/0"
    # The local models stay available (as the last fallback) unless turned off.
    assert "smollm2-135m-instruct" in settings.models


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
colour: blue
server: {port: -1}
deployments:
  a: {provider: openia, model: x}
  b: {provider: openai, model: y, api_key: "${MISSING}", api_base: "ftp://nope"}
models:
  m: [a, ghost]
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = "\n".join(caught.value.problems)
    for expected in (
        f"{path}: colour: unknown top-level key",
        f"{path}: server.port: must be a non-negative int",
        f"{path}: deployments.a.provider: must be one of",
        f"{path}: deployments.b.api_key: environment variable MISSING is not set",
        f"{path}: deployments.b.api_base: must be an http:// or https:// URL",
        f"{path}: models.m.deployments: unknown deployment(s) ['a', 'ghost']",
    ):
        assert expected in problems


def test_a_malformed_redis_url_is_a_configuration_error_without_its_password(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('stores: {redis_url: "redis://:hunter2@cache:63x79/0"}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = "\n".join(caught.value.problems)
    assert f"{path}: stores.redis_url: the Redis port must be a number" in problems
    assert "hunter2" not in problems


def test_unreadable_and_invalid_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(tmp_path / "absent.yaml", {})
    broken = tmp_path / "broken.yaml"
    broken.write_text("deployments: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, {})


def test_failure_handling_knobs_and_fallback_chains(tmp_path: Path) -> None:
    path = tmp_path / "seawall.yaml"
    path.write_text(
        """
resilience:
  max_attempts: 4
  max_queue_wait_seconds: 5
  backoff: {base_seconds: 0.1, cap_seconds: 2}
  retry_budget: {ratio: 0.1}
  breaker: {failure_rate: 0.3, half_open_probes: 1}
  admission: {max_concurrent: 8, max_queue: 16}
deployments:
  east: {provider: openai, model: gpt-4o, api_key: k, weight: 3, limits: {rpm: 500, tpm: 30000}}
  west: {provider: openai, model: gpt-4o, api_key: k, limits: {adaptive: false}}
  big: {provider: openai, model: gpt-4.1, api_key: k, context_window: 1000000}
models:
  smart: {deployments: [east, west], strategy: balanced, fallbacks: [smollm2-135m-instruct],
          context_fallback: long}
  long: [big]
"""
    )
    settings = load_settings(path, {})
    resilience = settings.resilience
    assert (resilience.max_attempts, resilience.max_queue_wait_seconds) == (4, 5.0)
    assert (resilience.backoff.base_seconds, resilience.backoff.cap_seconds) == (0.1, 2.0)
    assert resilience.retry_budget.ratio == 0.1
    assert (resilience.breaker.failure_rate, resilience.breaker.half_open_probes) == (0.3, 1)
    assert resilience.admission.max_concurrent == 8
    east = settings.deployments["east"]
    assert (east.weight, east.limits.rpm, east.limits.tpm) == (3.0, 500.0, 30000.0)
    assert settings.deployments["west"].limits.adaptive is False
    smart = settings.models["smart"]
    assert smart.strategy == "balanced"
    assert smart.fallbacks == ("smollm2-135m-instruct",)
    assert smart.context_fallback == "long"


def test_bad_failure_handling_settings_name_their_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
resilience:
  max_attempts: 0
  breaker: {failure_rate: 3}
  admission: {max_concurrent: 0}
deployments:
  a: {provider: openai, model: x, api_key: k, weight: 0, limits: {rpm: 0, adaptive: maybe}}
models:
  m: {deployments: [a], strategy: random, fallbacks: [ghost]}
  n: {deployments: [a], fallbacks: [n], context_fallback: all-minilm-l6-v2-embed}
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = "\n".join(caught.value.problems)
    for expected in (
        f"{path}: resilience.max_attempts: must be at least 1",
        f"{path}: resilience.breaker: ",
        f"{path}: resilience.admission: ",
        f"{path}: deployments.a.limits.adaptive: must be true or false",
        f"{path}: deployments.a.weight: must be greater than 0",
        f"{path}: models.m.strategy: must be one of ['ordered', 'balanced']",
        f"{path}: models.n.fallbacks: a model cannot fall back to itself",
        f"{path}: models.n.context_fallback: 'all-minilm-l6-v2-embed' serves embeddings",
    ):
        assert expected in problems


def test_shutdown_drain_and_grace_periods_from_yaml_and_environment(tmp_path: Path) -> None:
    defaults = load_settings(None, {}).server
    assert (defaults.drain_seconds, defaults.grace_seconds) == (0.0, 30.0)
    path = tmp_path / "seawall.yaml"
    path.write_text("server: {drain_seconds: 5, grace_seconds: 45.5}\n")
    server = load_settings(path, {}).server
    assert (server.drain_seconds, server.grace_seconds) == (5.0, 45.5)
    environ = {"SEAWALL_DRAIN_SECONDS": "10", "SEAWALL_GRACE_SECONDS": "0.5"}
    for source in (path, None):
        server = load_settings(source, environ).server
        assert (server.drain_seconds, server.grace_seconds) == (10.0, 0.5)


def test_a_negative_drain_or_grace_period_is_a_problem_naming_its_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server: {drain_seconds: -1, grace_seconds: soon}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    problems = "\n".join(caught.value.problems)
    assert f"{path}: server.drain_seconds: must be a non-negative float, got -1" in problems
    assert f"{path}: server.grace_seconds: must be a non-negative float, got 'soon'" in problems
    # A value from an environment override is reported against its variable.
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {"SEAWALL_GRACE_SECONDS": "-2"})
    assert (
        "environment variable SEAWALL_GRACE_SECONDS: server.grace_seconds: "
        "must be a non-negative float, got '-2'"
    ) in caught.value.problems
