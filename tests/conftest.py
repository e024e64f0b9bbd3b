"""Shared fixtures: a clean environment, databases and a private Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.databases import any_database, database_url, migrated_url, postgres_url
from tests.private_redis import private_redis
from tests.redis_keyspace import inspect_redis

# Fixtures every test folder may use.
__all__ = [
    "any_database",
    "database_url",
    "inspect_redis",
    "migrated_url",
    "postgres_url",
    "private_redis",
]


@pytest.fixture(autouse=True)
def _clean_provider_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never inherit provider credentials or endpoints they did not set."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "SEAWALL_")):
            monkeypatch.delenv(name, raising=False)
    yield
