"""The server + client + JSON combinations ``stack_choice.py`` compares, and starting them."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from processes import ProcessGroup, free_port, wait_ready, wait_settled

BENCH_DIR = Path(__file__).resolve().parent
# What `seawall serve` runs: uvicorn with the coalescing protocol (server_protocol.py).
COALESCING = "uvicorn+coalescing"
PLAIN_SERVERS = ("uvicorn", "granian", "hypercorn")


@dataclass(frozen=True, slots=True)
class Variant:
    """One server + client + JSON combination, serving the forwarder or Seawall."""

    app: str  # "forwarder" or "seawall"
    server: str
    client: str = "aiohttp"
    json: str = "orjson"
    workers: int = 1

    @property
    def name(self) -> str:
        """A short label for tables and JSON keys."""
        return f"{self.app} x{self.workers}: {self.server} + {self.client} + {self.json}"


def variants(seawall_workers: int) -> list[Variant]:
    """The combinations measured; each forwarder differs from the baseline in one part.

    Forwarders run one worker (per-process efficiency); Seawall runs the worker
    count it is deployed with, where the servers' process models really compete.
    """
    found = [
        Variant("forwarder", "uvicorn"),
        Variant("forwarder", "uvicorn", client="httpx"),
        Variant("forwarder", "uvicorn", json="json"),
        Variant("forwarder", "granian"),
        Variant("seawall", "uvicorn", workers=seawall_workers),
        Variant("seawall", "granian", workers=seawall_workers),
        Variant("seawall", COALESCING, workers=seawall_workers),
    ]
    if importlib.util.find_spec("hypercorn") is not None:
        found.insert(4, Variant("forwarder", "hypercorn"))
    return found


def server_command(server: str, target: str, port: int, workers: int) -> list[str]:
    """The command line serving the ASGI factory ``target``."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "uvicorn":
        return [
            *(sys.executable, "-m", "uvicorn", target, "--factory", *host),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning", "--workers", str(workers)),
        ]
    if server == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory", *host),
            *("--loop", "uvloop", "--workers", str(workers), "--no-access-log"),
            *("--log-level", "warning", target),
        ]
    if server == "hypercorn":
        bind = f"127.0.0.1:{port}"
        # hypercorn calls a factory written as "module:factory()".
        return [
            *(sys.executable, "-m", "hypercorn", "--bind", bind, "-k", "uvloop"),
            *("--workers", str(workers), f"{target}()"),
        ]
    raise ValueError(server)


def seawall_config(directory: Path, upstream: str, key: str) -> Path:
    """A Seawall configuration with one public model served by the simulator."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "seawall.yaml"
    path.write_text(
        f"data_dir: {directory / 'data'}\n"
        f"master_key: {key}\n"
        "server:\n  log_level: warning\n"
        "deployments:\n"
        "  sim-gpt:\n    provider: openai\n    model: gpt-4o-mini\n"
        f"    api_base: {upstream}/v1\n    api_key: sim-key\n"
        "models:\n  gpt-4o-mini: [sim-gpt]\n"
    )
    return path


def prepare_database(config: Path) -> None:
    """Apply migrations once, as ``seawall serve`` does before its workers start."""
    from seawall.config import load_from_environment
    from seawall.stores.migrate import upgrade

    settings = load_from_environment(config)
    asyncio.run(upgrade(settings.stores.database_url))


def start_variant(
    group: ProcessGroup, variant: Variant, upstream: str, scratch: Path, key: str
) -> tuple[str, int]:
    """Start one server (Seawall ones each with its own database); its chat URL and pid."""
    port = free_port()
    env = dict(os.environ)
    name = variant.name.replace(": ", "-").replace(" + ", "-").replace(" ", "-")
    if variant.app == "forwarder":
        env["PYTHONPATH"] = str(BENCH_DIR)
        env["FORWARDER_UPSTREAM"] = f"{upstream}/v1/chat/completions"
        env["FORWARDER_CLIENT"] = variant.client
        env["FORWARDER_JSON"] = variant.json
        command = server_command(variant.server, "forwarder:forwarder_app", port, variant.workers)
    else:
        config = seawall_config(scratch / name, upstream, key)
        prepare_database(config)
        env["SEAWALL_CONFIG"] = str(config)
        env["SEAWALL_MASTER_KEY"] = key
        if variant.server == COALESCING:
            command = [sys.executable, "-m", "seawall.cli.main", "serve", "--config", str(config)]
            command += ["--port", str(port), "--workers", str(variant.workers)]
        else:
            target = "seawall.http.worker:create_app"
            command = server_command(variant.server, target, port, variant.workers)
    process = group.start(name, command, env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/v1/chat/completions", process)
        wait_settled(process.pid, variant.workers)
    except RuntimeError as error:
        raise RuntimeError(f"{variant.name} did not start: {error}\n{group.log(name)}") from None
    return f"{base}/v1/chat/completions", process.pid
