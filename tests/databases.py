"""Databases for store contract tests: a SQLite file and a private PostgreSQL database.

Imported into ``tests/conftest.py``, so every test folder can ask for them.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from seawall.stores.migrate import upgrade

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A database of our own on the shared server, created once and dropped at the end."""
    name = f"seawall_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"{POSTGRES_SERVER}/{name}"
    admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def empty_postgres(url: str) -> None:
    """Drop everything in our private database so a test starts from nothing."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL of each kind Seawall supports (sync: it resolves async fixtures)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'seawall.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database_url(any_database: str) -> str:
    """An empty database of each kind Seawall supports."""
    if any_database.startswith("postgresql"):
        await empty_postgres(any_database)
    return any_database


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """The empty database, migrated to head."""
    await upgrade(database_url)
    return database_url
