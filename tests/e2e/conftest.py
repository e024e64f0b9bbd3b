"""A live ``seawall serve`` process in front of the simulator, for the real SDKs to drive."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

MASTER_KEY = "sk-seawall-test-master-key-0123456789"


@dataclass(frozen=True)
class LiveSeawall:
    """A running gateway: where it listens and the key it accepts."""

    url: str
    key: str
    simulator_url: str
    data_dir: Path

    @property
    def v1(self) -> str:
        """Base URL for the OpenAI SDK."""
        return f"{self.url}/v1"


def gateway_config(simulator_url: str, data_dir: Path) -> str:
    """A configuration routing public models to the simulator over both wire formats.

    One attempt per request and breakers that never open: these tests check how each
    upstream answer reaches the client; tests/resilience covers retries and fallbacks.
    """
    return f"""
data_dir: {data_dir}
master_key: ${{TEST_MASTER_KEY}}
server:
  max_body_bytes: 1048576
resilience:
  max_attempts: 1
  breaker: {{min_requests: 1000000}}
deployments:
  sim-gpt:
    provider: openai
    model: gpt-4o-mini
    api_base: {simulator_url}/v1
    api_key: sim-key
    timeouts: {{connect: 2, first_byte: 5, between_chunks: 5, total: 20}}
  sim-embed:
    provider: openai
    model: text-embedding-3-small
    api_base: {simulator_url}/v1
    api_key: sim-key
  sim-claude:
    provider: anthropic
    model: claude-sonnet-4-0
    api_base: {simulator_url}
    api_key: sim-key
models:
  gpt-4o-mini: [sim-gpt]
  text-embedding-3-small: [sim-embed]
  claude-sonnet-4-0: [sim-claude]
"""


def start_seawall(config: Path, log_path: Path, env: dict[str, str]) -> ServerProcess:
    """``seawall serve --config`` on a free port, ready to serve."""
    server = ServerProcess.start(
        seawall_argv("serve", "--config", str(config), "--port", "{port}"), log_path, env=env
    )
    server.wait_http("/health/ready")
    return server


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``seawall simulate`` as its own process (sync SDK calls must not block its loop)."""
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    server = ServerProcess.start(
        seawall_argv("simulate", "--port", "{port}", "--api-key", "sim-key"), log
    )
    try:
        server.wait_http("/_simulator/stats")
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_seawall(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSeawall]:
    """``seawall serve`` on a free port, configured against the simulator."""
    data_dir = tmp_path_factory.mktemp("seawall-data")
    config = data_dir / "seawall.yaml"
    config.write_text(gateway_config(simulator, data_dir))
    server = start_seawall(config, data_dir / "serve.log", clean_env(TEST_MASTER_KEY=MASTER_KEY))
    try:
        yield LiveSeawall(
            url=server.url, key=MASTER_KEY, simulator_url=simulator, data_dir=data_dir
        )
    finally:
        server.stop()
