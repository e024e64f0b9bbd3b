"""Real server processes for end-to-end tests, their output kept in a log file.

Output goes to a file, never to a pipe: a pipe nobody reads fills up and blocks the
server (llama.cpp logs tens of kilobytes while loading).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port


def seawall_argv(*args: str) -> list[str]:
    """The command line of the ``seawall`` CLI in this interpreter."""
    return [sys.executable, "-m", "seawall.cli.main", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without provider or Seawall settings, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "ANTHROPIC_", "SEAWALL_"))
    }
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    """A server subprocess listening on ``url``."""

    process: subprocess.Popen[bytes]
    log_path: Path
    url: str

    @classmethod
    def start(
        cls,
        argv: list[str],
        log_path: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ServerProcess:
        """Launch ``argv``; ``{port}`` in it is replaced by a free port."""
        port = port or free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [arg.replace("{port}", str(port)) for arg in argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env if env is not None else clean_env(),
                cwd=cwd,
            )
        return cls(process=process, log_path=log_path, url=f"http://127.0.0.1:{port}")

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.process.args!r} exited ({self.process.returncode}):\n"
                f"{self.output()[-3000:]}"
            )

    def wait_http(self, path: str, timeout: float = 60.0) -> None:
        """Block until ``GET path`` answers 200, or fail with the process's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.url}{path}", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"{self.process.args!r} did not answer {path} in time:\n{self.output()}")

    def wait_for_line(self, needle: str, timeout: float = 60.0) -> str:
        """The first output line containing ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if needle in line:
                    return line
            self._check_alive()
            time.sleep(0.05)
        pytest.fail(f"never printed {needle!r}:\n{self.output()}")

    def stop(self) -> str:
        """Stop gracefully (SIGTERM; SIGKILL after 30 s) and return the output."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output()
