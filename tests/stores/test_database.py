"""Engines: plain URLs work, SQLite is shared safely between workers, ping tells the truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from seawall.errors import ServiceUnavailable
from seawall.stores.database import async_url, create_engine, ping
from seawall.stores.migrate import upgrade
from seawall.stores.sql_records import SqlRecordStore
from tests.ports import free_port
from tests.stores.sample_records import sample_record


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/seawall.db", "sqlite+aiosqlite:///data/seawall.db"),
        ("sqlite:////var/lib/seawall.db", "sqlite+aiosqlite:////var/lib/seawall.db"),
        ("sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"),
        ("postgresql://u@db:5432/seawall", "postgresql+asyncpg://u@db:5432/seawall"),
        ("postgres://u@db/seawall", "postgresql+asyncpg://u@db/seawall"),
        (
            "postgresql://u@db/seawall?sslmode=require",
            "postgresql+asyncpg://u@db/seawall?ssl=require",
        ),
    ],
)
def test_plain_urls_are_mapped_to_async_drivers(url: str, expected: str) -> None:
    assert async_url(url) == make_url(expected)


def test_an_unsupported_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        create_engine("mysql://u@db/seawall")


async def test_sqlite_file_and_its_folder_are_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "seawall.db"
    await upgrade(f"sqlite:///{path}")
    assert path.is_file()


async def test_a_reader_in_one_worker_does_not_block_a_writer_in_another(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    await upgrade(url)
    reader = create_engine(url)
    writer = SqlRecordStore(create_engine(url, busy_timeout_s=0.2))
    try:
        async with reader.connect() as connection:
            await connection.exec_driver_sql("BEGIN")
            await connection.execute(text("SELECT count(*) FROM requests"))
            # Without WAL the writer's commit would wait for this open read and time out.
            record = sample_record()
            await writer.write_batch([record])
            assert await writer.get(record.request_id) == record
    finally:
        await reader.dispose()
        await writer.aclose()


async def test_ping_succeeds_on_a_live_database(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


async def test_ping_raises_service_unavailable_when_postgres_is_down() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/seawall")
    try:
        with pytest.raises(ServiceUnavailable, match="unreachable"):
            await ping(engine)
    finally:
        await engine.dispose()


async def test_ping_raises_service_unavailable_when_sqlite_cannot_open(tmp_path: Path) -> None:
    # A folder where the database file should be: nothing can open it, not even root.
    engine = create_engine(f"sqlite:///{tmp_path}")
    try:
        with pytest.raises(ServiceUnavailable, match="unreachable"):
            await ping(engine)
    finally:
        await engine.dispose()
