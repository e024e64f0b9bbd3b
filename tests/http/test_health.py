"""Readiness tells a load balancer the truth about the stores and deployments."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from seawall.config import load_settings
from seawall.http.app import build_app
from tests.ports import free_port

KEY = "sk-seawall-health-test-key"


def app_with(tmp_path: Path, stores: str, deployments: str = "") -> TestClient:
    config = tmp_path / "seawall.yaml"
    config.write_text(f"data_dir: {tmp_path}\nstores: {stores}\n{deployments}")
    return TestClient(build_app(load_settings(config, {}), KEY))


def test_ready_with_database_redis_and_local_models(tmp_path: Path) -> None:
    with app_with(tmp_path, "{redis_url: 'redis://127.0.0.1:6379/0'}") as client:
        ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["redis"] == "ok"


def test_not_ready_when_redis_is_down(tmp_path: Path) -> None:
    dead_redis = f"{{redis_url: 'redis://127.0.0.1:{free_port()}/0'}}"
    with app_with(tmp_path, dead_redis) as client:
        ready = client.get("/health/ready")
        # Liveness is about the process, not its dependencies: restarting would not help.
        assert client.get("/health/live").status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("failed")


def test_not_ready_without_a_usable_deployment(tmp_path: Path) -> None:
    keyless = """
local_models: false
deployments:
  openai-direct: {provider: openai, model: gpt-4o-mini}
"""
    with app_with(tmp_path, "{}", keyless) as client:
        ready = client.get("/health/ready")
        answer = client.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        )
    assert ready.status_code == 503
    assert ready.json()["checks"]["deployments"] == "none usable"
    assert answer.status_code == 503
    assert "No deployment of model 'gpt-4o-mini' is usable" in answer.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/v1/nothing"])
def test_every_response_carries_a_server_request_id(tmp_path: Path, path: str) -> None:
    with app_with(tmp_path, "{}") as client:
        response = client.get(path, headers={"x-request-id": "mine"})
    assert response.headers["x-request-id"].startswith("req_")
