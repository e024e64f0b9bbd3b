"""A ``redis-server`` of the test's own on a free port, to stop, kill and restart at will.

Outage tests use it so they never touch the shared Redis at 127.0.0.1:6379. It keeps
nothing on disk: a restart comes back empty.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.ports import free_port


class PrivateRedis:
    """A private Redis without persistence."""

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
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        with (self._root / "redis.log").open("ab") as log:
            self._process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._root,
            )
        client = self.client()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)
            raise AssertionError("the private redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        """Shut it down cleanly (SIGTERM) and wait until it is gone."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Kill it outright, as a crash would, and wait until it is gone."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def client(self) -> redis.Redis:
        """A synchronous client for it."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis, killed at the end whatever happened."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
