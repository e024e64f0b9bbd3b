"""Processes for end-to-end tests: simulators with their control API, and Seawalls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.e2e.conftest import MASTER_KEY, start_seawall
from tests.e2e.processes import ServerProcess, clean_env, seawall_argv

CHAT = "/v1/chat/completions"


@dataclass
class Simulator:
    """A ``seawall simulate`` process, with its control API."""

    server: ServerProcess

    @property
    def url(self) -> str:
        """Its base URL (no /v1)."""
        return self.server.url

    def arm(self, **fault: Any) -> None:
        """Arm one fault, e.g. ``arm(fault="unavailable", model="m")``."""
        httpx.post(f"{self.url}/_simulator/faults", json=fault, timeout=5).raise_for_status()

    def clear(self) -> None:
        """Disarm every fault."""
        httpx.delete(f"{self.url}/_simulator/faults", timeout=5).raise_for_status()

    def script(self, contains: str, text: str) -> None:
        """Answer ``text`` to every prompt containing ``contains``."""
        answer = httpx.post(
            f"{self.url}/_simulator/answers", json={"contains": contains, "text": text}, timeout=5
        )
        answer.raise_for_status()

    def chat_requests(self) -> int:
        """Chat completion requests it has received so far."""
        stats = httpx.get(f"{self.url}/_simulator/stats", timeout=5).json()
        return int(stats["requests"].get(CHAT, 0))


@contextlib.contextmanager
def simulator_process(log: Path, *args: str) -> Iterator[Simulator]:
    """A simulator process for the duration of the block."""
    server = ServerProcess.start(seawall_argv("simulate", "--port", "{port}", *args), log)
    try:
        server.wait_http("/_simulator/stats")
        yield Simulator(server)
    finally:
        server.stop()


@contextlib.contextmanager
def seawall_process(root: Path, config: str) -> Iterator[ServerProcess]:
    """``seawall serve`` with ``config`` (its data_dir is ``root``) for the block."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "seawall.yaml"
    path.write_text(f"data_dir: {root}\nmaster_key: {MASTER_KEY}\nlocal_models: false\n{config}")
    server = start_seawall(path, root / "serve.log", clean_env())
    try:
        yield server
    finally:
        server.stop()


def sdk(server: ServerProcess) -> openai.OpenAI:
    """The real OpenAI SDK pointed at a Seawall, without its own retries."""
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=20.0
    )


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether ``check`` became true within ``timeout`` seconds (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
