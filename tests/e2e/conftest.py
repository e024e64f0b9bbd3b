"""A live ``seawall serve`` process in front of the simulator, for the real SDKs to drive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

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
    """A configuration routing public models to the simulator over both wire formats."""
    return f"""
data_dir: {data_dir}
master_key: ${{TEST_MASTER_KEY}}
server:
  max_body_bytes: 1048576
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


def start_seawall(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Launch ``seawall serve`` as a real process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seawall.cli.main",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Block until /health/ready answers 200, or fail with the server's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"seawall serve exited early ({process.returncode}):\n{output}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("seawall serve did not become ready in time")


def stop(process: subprocess.Popen[bytes]) -> str:
    """Stop gracefully (SIGTERM) and return what the process printed."""
    process.terminate()
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output.decode() if output else ""


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    """``seawall simulate`` as its own process (sync SDK calls must not block its loop)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seawall.cli.main",
            "simulate",
            "--port",
            str(port),
            "--api-key",
            "sim-key",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_simulator/stats", timeout=1.0)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def live_seawall(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSeawall]:
    """``seawall serve`` on a free port, configured against the simulator."""
    data_dir = tmp_path_factory.mktemp("seawall-data")
    config = data_dir / "seawall.yaml"
    config.write_text(gateway_config(simulator, data_dir))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env["TEST_MASTER_KEY"] = MASTER_KEY
    process = start_seawall(config, port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield LiveSeawall(url=url, key=MASTER_KEY, simulator_url=simulator, data_dir=data_dir)
    finally:
        stop(process)
