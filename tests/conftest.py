"""Shared fixtures: a clean environment and free ports."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.databases import any_database, database_url, migrated_url, postgres_url

# Fixtures every test folder may use.
__all__ = ["any_database", "database_url", "migrated_url", "postgres_url"]


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never inherit provider credentials or endpoints they did not set."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "SEAWALL_")):
            monkeypatch.delenv(name, raising=False)
    yield


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
