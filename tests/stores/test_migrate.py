"""Migrations bring any database to head, once, however many processes start together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from seawall.stores.database import create_engine
from seawall.stores.migrate import current_revision, head_revision, upgrade, upgrade_engine
from seawall.stores.sql_records import SqlRecordStore
from seawall.stores.tables import metadata
from tests.stores.sample_records import sample_record


async def test_upgrade_brings_an_empty_database_to_head(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await upgrade(database_url)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert "requests" in tables
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_a_no_op_that_keeps_data(database_url: str) -> None:
    await upgrade(database_url)
    store = SqlRecordStore(create_engine(database_url))
    record = sample_record()
    try:
        await store.write_batch([record])
        await upgrade(database_url)
        await upgrade(database_url)
        assert await store.get(record.request_id) == record
    finally:
        await store.aclose()


async def test_workers_starting_together_migrate_once_without_errors(database_url: str) -> None:
    await asyncio.gather(*(upgrade(database_url) for _ in range(4)))

    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_table_definitions(migrated_url: str) -> None:
    def differences(connection: Connection) -> Sequence[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found: list[object] = compare_metadata(context, metadata)
        return found

    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_in_memory_sqlite_is_migrated_through_its_engine() -> None:
    engine = create_engine("sqlite:///:memory:")
    store = SqlRecordStore(engine)
    record = sample_record()
    try:
        await upgrade_engine(engine)
        await upgrade_engine(engine)
        await store.write_batch([record])
        assert await store.get(record.request_id) == record
    finally:
        await store.aclose()


async def test_a_rolled_back_release_starts_on_a_newer_schema_without_migrating(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade(database_url)
    engine = create_engine(database_url)
    newer = "9999_from_a_newer_release"
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": newer}
            )

        with caplog.at_level(logging.WARNING, logger="seawall.stores.migrate"):
            await upgrade(database_url)

        assert await current_revision(engine) == newer
        assert f"revision {newer}, newer than this Seawall's {head_revision()}" in caplog.text
        store = SqlRecordStore(engine)
        record = sample_record()
        await store.write_batch([record])
        assert await store.get(record.request_id) == record
    finally:
        await engine.dispose()
