"""Fixtures for budget tests: a Redis key prefix and the client one Seawall instance has.

Test modules import the fixtures they use (the SQL databases come from tests/conftest.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from seawall.stores.redis_keys import BUDGET
from seawall.stores.redis_multiplex import MultiplexedRedis
from tests.redis_keyspace import REDIS_URL, delete_prefix


@pytest.fixture
async def budget_prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test's own, emptied after it."""
    prefix = f"{BUDGET}test-{secrets.token_hex(6)}:"
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture
async def redis_client() -> AsyncIterator[MultiplexedRedis]:
    """A client of the shared Redis, as one Seawall instance has."""
    client = MultiplexedRedis(REDIS_URL)
    yield client
    await client.aclose()
