"""The shipped images, compose stack and Kubernetes manifests: valid, and true to Seawall.

No Docker engine or cluster runs here, so hadolint lints the Dockerfiles,
``docker-compose config`` resolves the stack and kubernetes-validate checks the
manifests against the API schemas. The rest reads the files together: every probe is
a path a live Seawall answers, every variable a configuration needs is passed to it,
and every timeout leaves the drain its time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from starlette.testclient import TestClient

from seawall.config import ConfigError, ServerSettings, Settings, load_settings
from seawall.config.defaults import LOCAL_CHAT_MODEL
from seawall.http.app import build_app

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
COMPOSE = ROOT / "deploy" / "compose"
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "production"
DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]
HEALTHCHECK_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]+)")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
COMPOSE_SECRETS = {
    "SEAWALL_MASTER_KEY": "sk-seawall-compose-test-key",
    "POSTGRES_PASSWORD": "compose-test-password",
    "GRAFANA_ADMIN_PASSWORD": "compose-test-admin",
}
PROVIDER_KEYS = {"openai-api-key", "anthropic-api-key"}


def venv_tool(name: str) -> Path:
    """A tool the dev extra installs beside the test interpreter; fail (not skip) without it."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]' (make test does)")
    return path


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker; its output is kept for the assertion message."""
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=120, env=env
    )


# Dockerfiles


def instructions(path: Path) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def makefile_value(name: str) -> str:
    """A ``NAME := value`` line of the Makefile."""
    match = re.search(rf"^{name} := (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def model_packages() -> list[str]:
    """The pinned model packages the Makefile installs with --no-deps."""
    return re.findall(r"[\w-]+==[\d.]+", (ROOT / "Makefile").read_text())


def first(stage: list[tuple[str, str]], keyword: str, needle: str) -> int:
    """Index of the first ``keyword`` instruction mentioning ``needle``."""
    for index, (found, arguments) in enumerate(stage):
        if found == keyword and needle in arguments:
            return index
    pytest.fail(f"no {keyword} mentioning {needle!r}")


def image_uid(name: str) -> int:
    """The numeric user the image's final stage runs as."""
    users = [args for keyword, args in instructions(DOCKER / name)[-1] if keyword == "USER"]
    assert users, f"{name}: the final stage sets no USER (it would run as root)"
    uid = users[-1].split(":")[0]
    # Numeric, so that Kubernetes can tell it is not root (runAsNonRoot).
    assert uid.isdigit(), f"{name}: USER {users[-1]}"
    return int(uid)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name: str) -> None:
    result = run(venv_tool("hadolint"), "--config", ROOT / ".hadolint.yaml", DOCKER / name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install seawall\n")
    result = run(venv_tool("hadolint"), "--config", ROOT / ".hadolint.yaml", bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # the untagged base image


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_image_runs_unprivileged_and_reports_its_readiness(name: str) -> None:
    final = instructions(DOCKER / name)[-1]
    assert image_uid(name) > 0
    checks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert HEALTHCHECK_URL.search(checks[0]), checks[0]
    assert ("EXPOSE", "8080") in final
    assert ("STOPSIGNAL", "SIGTERM") in final
    assert ("ENTRYPOINT", '["seawall"]') in final
    # A broken image fails to build: the final stage looks for the bundled model files.
    assert first(final, "RUN", "model_files") > first(final, "USER", "")


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dependencies_and_models_are_installed_before_the_code_is_copied(name: str) -> None:
    build = instructions(DOCKER / name)[0]
    code = first(build, "COPY", "src")
    assert first(build, "COPY", "pyproject.toml") < first(build, "RUN", "--requirement") < code
    for package in model_packages():
        assert first(build, "RUN", package) < code, package
        assert "--no-deps" in build[first(build, "RUN", package)][1], package
    # Seawall itself comes last, without its dependencies (installed above, pinned there).
    assert first(build, "RUN", "--no-deps .") > code


def test_the_cpu_image_builds_llama_cpp_like_the_makefile() -> None:
    build = instructions(DOCKER / "Dockerfile")[0]
    environment = build[first(build, "ENV", "CMAKE_ARGS")][1]
    assert makefile_value("LLAMA_CMAKE_ARGS") in environment
    assert "GGML_CUDA" not in environment


def test_the_cuda_image_builds_llama_cpp_for_the_gpu() -> None:
    stages = instructions(DOCKER / "Dockerfile.cuda")
    assert stages[0][0][1].startswith("nvidia/cuda:") and "-devel-" in stages[0][0][1]
    assert stages[-1][0][1].startswith("nvidia/cuda:") and "-runtime-" in stages[-1][0][1]
    environment = stages[0][first(stages[0], "ENV", "CMAKE_ARGS")][1]
    assert "-DGGML_CUDA=on" in environment
    assert "-DGGML_NATIVE=OFF" in environment  # no GPU to detect at build time


# The compose stack


def compose_config(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with exactly ``environ`` (no .env file is read)."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed: run scripts/ensure-tools (make tools)")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **environ}
    compose = COMPOSE / "docker-compose.yml"
    return run("docker-compose", "--env-file", empty, "-f", compose, "config", env=env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose stack as docker-compose resolves it."""
    result = compose_config(tmp_path_factory.mktemp("compose"), **COMPOSE_SECRETS)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def gateways(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Seawall services of the stack."""
    return {name: s for name, s in stack["services"].items() if name.startswith("seawall-")}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            found[target] = source
    return found


def seconds(duration: str) -> float:
    """A compose duration (``1m30s``, ``50s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_refuses_to_start_without_a_master_key(tmp_path: Path) -> None:
    environ = {k: v for k, v in COMPOSE_SECRETS.items() if k != "SEAWALL_MASTER_KEY"}
    result = compose_config(tmp_path, **environ)
    assert result.returncode != 0
    assert "set SEAWALL_MASTER_KEY" in result.stderr


def test_the_stack_has_its_services(stack: dict[str, Any]) -> None:
    assert {"lb", "redis", "postgres", "prometheus", "grafana"} <= set(stack["services"])
    assert len(gateways(stack)) >= 2
    assert stack["services"]["lb"]["ports"][0]["published"] == 8443
    assert set(gateways(stack)) <= set(stack["services"]["lb"]["depends_on"])


def test_every_mounted_host_path_exists(stack: dict[str, Any]) -> None:
    operator_made = {COMPOSE / "certs"}  # the TLS certificate (docs/deployment.md)
    for name, service in stack["services"].items():
        for target, source in mounts(service).items():
            path = Path(source)
            assert path.is_relative_to(ROOT), (name, source)
            assert path.exists() or path in operator_made, (name, target, source)


def test_the_gateways_are_built_configured_and_given_time_to_drain(
    stack: dict[str, Any],
) -> None:
    for name, service in gateways(stack).items():
        assert Path(service["build"]["context"]) == ROOT, name
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile", name
        config = service["environment"]["SEAWALL_CONFIG"]
        assert mounts(service)[config] == str(COMPOSE / "seawall.yaml"), name
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency] == {"condition": "service_healthy"}, name
            assert "healthcheck" in stack["services"][dependency], dependency
        assert HEALTHCHECK_URL.search(" ".join(service["healthcheck"]["test"])), name
        settings = load_settings(COMPOSE / "seawall.yaml", service["environment"])
        drain = settings.server.drain_seconds + settings.server.grace_seconds
        assert settings.server.grace_seconds > 0, name
        assert seconds(service["stop_grace_period"]) > drain, name


def test_the_gateways_configuration_points_at_the_stacks_postgres_and_redis(
    stack: dict[str, Any],
) -> None:
    environ = next(iter(gateways(stack).values()))["environment"]
    settings = load_settings(COMPOSE / "seawall.yaml", environ)
    database = urlsplit(settings.stores.database_url)
    assert database.scheme == "postgresql"
    assert database.hostname == "postgres"
    assert database.password == COMPOSE_SECRETS["POSTGRES_PASSWORD"]
    assert database.path == "/" + stack["services"]["postgres"]["environment"]["POSTGRES_DB"]
    assert settings.stores.redis_url == "redis://redis:6379/0"
    assert settings.master_key == COMPOSE_SECRETS["SEAWALL_MASTER_KEY"]
    assert LOCAL_CHAT_MODEL in settings.models
    # An empty provider key (the stack's default) serves no provider models; a key does.
    assert "gpt-4o-mini" not in settings.models
    with_key = load_settings(COMPOSE / "seawall.yaml", {**environ, "OPENAI_API_KEY": "sk-x"})
    assert "gpt-4o-mini" in with_key.models


def test_prometheus_scrapes_the_gateways_and_grafana_reads_prometheus(
    stack: dict[str, Any],
) -> None:
    prometheus = mounts(stack["services"]["prometheus"])
    scrape = yaml.safe_load((Path(prometheus["/etc/prometheus"]) / "prometheus.yml").read_text())
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{name}:8080" for name in gateways(stack))

    grafana = mounts(stack["services"]["grafana"])
    provisioning = Path(grafana["/etc/grafana/provisioning"])
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090/tcp" in stack["services"]["prometheus"]["ports"]
    provider = yaml.safe_load((provisioning / "dashboards" / "seawall.yml").read_text())
    dashboards = Path(grafana[provider["providers"][0]["options"]["path"]])
    assert sorted(dashboards.glob("*.json")), dashboards


# Kubernetes


def documents(path: Path) -> Iterator[dict[str, Any]]:
    """The Kubernetes objects of a manifest file."""
    yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def manifests() -> list[Path]:
    """Every manifest under deploy/kubernetes (kustomization files are not objects)."""
    return sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


def base_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """The base's objects by (kind, name)."""
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in sorted(BASE.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in documents(path)
    }


def pod_spec() -> dict[str, Any]:
    """The base Deployment's pod spec."""
    spec: dict[str, Any] = base_objects()[("Deployment", "seawall")]["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    """The gateway container of the base Deployment."""
    (only,) = pod_spec()["containers"]
    return dict(only)


def example_secret() -> dict[str, str]:
    """The example Secret's values."""
    (secret,) = documents(KUBERNETES / "secret.example.yaml")
    return dict(secret["stringData"])


def pod_environment() -> dict[str, str]:
    """The container's environment with the example Secret's values filled in."""
    secret = example_secret()
    environ = {}
    for variable in container()["env"]:
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        else:
            environ[variable["name"]] = secret[variable["valueFrom"]["secretKeyRef"]["key"]]
    return environ


def configmap_settings(tmp_path: Path, environ: dict[str, str]) -> Settings:
    """The ConfigMap's seawall.yaml as Seawall loads it."""
    config = tmp_path / "seawall.yaml"
    config.write_text(base_objects()[("ConfigMap", "seawall")]["data"]["seawall.yaml"])
    return load_settings(config, environ)


def test_every_manifest_is_valid_for_the_kubernetes_api() -> None:
    found = manifests()
    assert {p.name for p in found} >= {"deployment.yaml", "secret.example.yaml"}
    result = run(venv_tool("kubernetes-validate"), "--strict", *found)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    service = base_objects()[("Service", "seawall")]
    service["spec"]["port"] = 8080  # a typo for "ports"
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(service))
    result = run(venv_tool("kubernetes-validate"), "--strict", path)
    assert result.returncode != 0
    assert "'port' was unexpected" in result.stdout + result.stderr


def test_the_kustomizations_name_what_exists() -> None:
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    in_folder = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(base["resources"]) == sorted(in_folder)

    overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert [(OVERLAY / r).resolve() for r in overlay["resources"]] == [BASE.resolve()]
    objects = base_objects()
    assert overlay["patches"]
    for patch in overlay["patches"]:
        target = (patch["target"]["kind"], patch["target"]["name"])
        body = yaml.safe_load(patch["patch"])
        assert target in objects, target
        assert (body["kind"], body["metadata"]["name"]) == target
        for patched in body["spec"].get("template", {}).get("spec", {}).get("containers", []):
            assert patched["name"] == container()["name"]
    image_names = {image["name"] for image in overlay["images"]}
    assert image_names == {container()["image"].split(":")[0]}


def test_the_probes_are_on_the_port_seawall_listens_on(tmp_path: Path) -> None:
    port = {p["name"]: p["containerPort"] for p in container()["ports"]}["http"]
    assert port == ServerSettings().port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"]["port"] == "http", probe
    assert container()["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    service = base_objects()[("Service", "seawall")]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pod_labels = base_objects()[("Deployment", "seawall")]["spec"]["template"]["metadata"]
    assert service["spec"]["selector"].items() <= pod_labels["labels"].items()
    assert configmap_settings(tmp_path, pod_environment()).server.port == port
    for name in DOCKERFILES:
        assert ("EXPOSE", str(port)) in instructions(DOCKER / name)[-1], name


def probe_paths() -> list[str]:
    """Every path an orchestrator probes: Kubernetes probes, Docker and compose health checks."""
    paths = {container()[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe")}
    paths.add(container()["readinessProbe"]["httpGet"]["path"])
    for name in DOCKERFILES:
        healthcheck = [a for k, a in instructions(DOCKER / name)[-1] if k == "HEALTHCHECK"]
        paths.update(match.group(2) for match in HEALTHCHECK_URL.finditer(healthcheck[0]))
    compose_text = (COMPOSE / "docker-compose.yml").read_text()
    paths.update(match.group(2) for match in HEALTHCHECK_URL.finditer(compose_text))
    return sorted(paths)


def test_every_probe_is_a_path_seawall_answers(tmp_path: Path) -> None:
    config = tmp_path / "seawall.yaml"
    config.write_text(f"data_dir: {tmp_path}\n")
    paths = probe_paths()
    assert "/health/ready" in paths
    with TestClient(build_app(load_settings(config, {}), "sk-seawall-deploy-test-key")) as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)


def test_the_pod_runs_as_the_image_user_on_a_read_only_root() -> None:
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    for name in DOCKERFILES:
        assert security["runAsUser"] == image_uid(name), name
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {
        mount["mountPath"]
        for mount in container()["volumeMounts"]
        if not mount.get("readOnly")
        and "emptyDir" in next(v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
    }
    assert {pod_environment()["SEAWALL_DATA_DIR"], "/tmp"} <= writable


def test_the_pod_gets_every_secret_its_configuration_needs() -> None:
    environ = pod_environment()
    config = base_objects()[("ConfigMap", "seawall")]["data"]["seawall.yaml"]
    assert set(VARIABLE.findall(config)) <= set(environ)
    refs = [v["valueFrom"]["secretKeyRef"] for v in container()["env"] if "valueFrom" in v]
    assert {ref["name"] for ref in refs} == {"seawall"}
    # Only the provider keys may be missing from the Secret.
    assert {ref["key"] for ref in refs if ref.get("optional")} == PROVIDER_KEYS
    # The example's values are placeholders nobody could mistake for working ones.
    assert set(example_secret()) == {ref["key"] for ref in refs}
    assert all("CHANGE-ME" in value for value in example_secret().values())


def test_the_configmap_points_at_postgres_and_redis(tmp_path: Path) -> None:
    environ = pod_environment()
    settings = configmap_settings(tmp_path, environ)
    assert settings.stores.database_url == environ["SEAWALL_DATABASE_URL"]
    assert settings.stores.database_url.startswith("postgresql://")
    assert settings.stores.redis_url == environ["SEAWALL_REDIS_URL"]
    assert settings.stores.redis_url.startswith("redis://")
    assert settings.master_key == environ["SEAWALL_MASTER_KEY"]
    assert LOCAL_CHAT_MODEL in settings.models
    # Without the database URL the pod does not start (rather than using SQLite in the pod).
    missing = {k: v for k, v in environ.items() if k != "SEAWALL_DATABASE_URL"}
    with pytest.raises(ConfigError, match="SEAWALL_DATABASE_URL is not set"):
        configmap_settings(tmp_path, missing)


def test_pods_have_time_to_drain_and_are_replaced_one_at_a_time(tmp_path: Path) -> None:
    server = configmap_settings(tmp_path, pod_environment()).server
    readiness = container()["readinessProbe"]
    # The drain outlasts the readiness probe noticing it: the pod leaves the Service first.
    assert server.drain_seconds > readiness["periodSeconds"] * readiness["failureThreshold"]
    assert pod_spec()["terminationGracePeriodSeconds"] > server.drain_seconds + server.grace_seconds
    deployment = base_objects()[("Deployment", "seawall")]["spec"]
    assert deployment["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    objects = base_objects()
    hpa = objects[("HorizontalPodAutoscaler", "seawall")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "seawall",
    }
    assert hpa["minReplicas"] >= 2
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] > 0
    # The autoscaler owns the count: a replica count in the Deployment would reset it.
    assert "replicas" not in deployment
    budget = objects[("PodDisruptionBudget", "seawall")]["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
