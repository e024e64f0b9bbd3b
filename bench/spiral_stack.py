"""The death-spiral benchmark's servers: simulators and Seawall, started and configured."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from processes import ProcessGroup, free_port, wait_ready, wait_settled
from spiral_clients import CHAT_PATH

MASTER_KEY = "sk-bench-death-spiral-master-key-0123456789"
MODEL = "gpt-4o-mini"
CHAT = orjson.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
)
# The simulators' service time.
SERVICE_MS = 50.0


def start_simulator(
    group: ProcessGroup, name: str, *options: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """``seawall simulate`` with the service time and ``options``; its base URL and process."""
    port = free_port()
    command = [sys.executable, "-m", "seawall.cli.main", "simulate", "--port", str(port)]
    command += ["--latency-ms", f"{SERVICE_MS:g}", *options]
    process = group.start(name, command)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v1/models", process)
    return base, process


def start_seawall(
    group: ProcessGroup, name: str, directory: Path, upstreams: dict[str, str], rpm: int | None
) -> tuple[str, subprocess.Popen[bytes]]:
    """``seawall serve`` (1 worker) with its config and data in ``directory``; URL and process."""
    config = seawall_config(directory, upstreams, rpm)
    port = free_port()
    command = [sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)]
    command += ["--port", str(port), "--workers", "1"]
    env = os.environ | {"SEAWALL_MASTER_KEY": MASTER_KEY}
    process = group.start(name, command, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/health/ready", process, any_status=False)
        wait_settled(process.pid, 1)
    except RuntimeError as error:
        raise RuntimeError(f"{name} did not start: {error}\n{group.log(name)}") from None
    return base, process


def seawall_config(directory: Path, upstreams: dict[str, str], rpm: int | None) -> Path:
    """Seawall's YAML: one deployment per simulator, the public model trying them in order."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"data_dir: {directory / 'data'}",
        "local_models: false",
        # As in the overhead benchmark: info-level logs would cost CPU beside what is measured.
        "server:\n  log_level: warning",
        "deployments:",
    ]
    for name, base in upstreams.items():
        lines += [
            f"  {name}:",
            "    provider: openai",
            f"    model: {MODEL}",
            f"    api_base: {base}/v1",
            "    api_key: sim-key",
        ]
        if rpm is not None:
            lines.append(f"    limits: {{rpm: {rpm}}}")
    lines += ["models:", f"  {MODEL}: [{', '.join(upstreams)}]"]
    path = directory / "seawall.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def warm_up(base: str) -> None:
    """One request through a fresh Seawall, so lazy start-up work is not measured."""
    request = urllib.request.Request(
        base + CHAT_PATH,
        data=CHAT,
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
    )
    # Its answer does not matter, only that the first request's work is done.
    with (
        contextlib.suppress(urllib.error.HTTPError),
        urllib.request.urlopen(request, timeout=30) as response,
    ):
        response.read()


def arm_fault(base: str, fault: dict[str, Any]) -> None:
    """POST /_simulator/faults."""
    request = urllib.request.Request(
        f"{base}/_simulator/faults",
        data=orjson.dumps(fault),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
