"""The record store on each kind of database (the databases come from tests/databases.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from seawall.stores.database import create_engine
from seawall.stores.sql_records import SqlRecordStore
from tests.databases import empty_postgres

__all__ = ["empty_postgres"]


@pytest.fixture
async def store(migrated_url: str) -> AsyncIterator[SqlRecordStore]:
    """A record store on the migrated database."""
    record_store = SqlRecordStore(create_engine(migrated_url))
    yield record_store
    await record_store.aclose()
