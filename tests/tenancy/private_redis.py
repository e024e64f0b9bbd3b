"""A ``redis-server`` of the test's own on a free port, to kill and restart at will.

Outage tests use it so they never touch the shared Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import free_port


class PrivateRedis:
    """A private Redis without persistence: a restart comes back empty."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self._root = root
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Run it and wait until it answers PING."""
        executable = shutil.which("redis-server")
        assert executable is not None, "redis-server is not installed"
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        with (self._root / "redis.log").open("ab") as log:
            self._process = subprocess.Popen(
                [executable, "--port", str(self.port), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._root,
            )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)
            raise AssertionError("private redis-server did not start")
        finally:
            client.close()

    def kill(self) -> None:
        """Kill it outright, as a crash would, and wait until it is gone."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None
