"""RecordWriter: records leave the request path, reach the store in batches, survive outages."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from seawall.stores.database import create_engine
from seawall.stores.migrate import upgrade
from seawall.stores.record_writer import RecordWriter
from seawall.stores.sql_records import SqlRecordStore
from tests.conftest import free_port
from tests.stores.conftest import empty_postgres
from tests.stores.eventually import eventually
from tests.stores.sample_records import sample_record
from tests.stores.tcp_proxy import TcpProxy


async def test_flushes_after_flush_seconds(store: SqlRecordStore) -> None:
    writer = RecordWriter(store, flush_seconds=0.05, batch_size=1_000)
    writer.start()
    record = sample_record()
    try:
        writer.submit(record)
        await eventually(lambda: writer.written == 1)
        assert writer.pending == 0
        assert await store.get(record.request_id) == record
    finally:
        await writer.aclose()


async def test_flushes_as_soon_as_a_batch_is_full(store: SqlRecordStore) -> None:
    writer = RecordWriter(store, flush_seconds=3_600, batch_size=5)
    writer.start()
    records = [sample_record() for _ in range(5)]
    try:
        for record in records[:4]:
            writer.submit(record)
        await asyncio.sleep(0.1)
        assert (writer.written, writer.pending) == (0, 4)

        writer.submit(records[4])
        await eventually(lambda: writer.written == 5)
        for record in records:
            assert await store.get(record.request_id) == record
    finally:
        await writer.aclose()


async def test_aclose_writes_everything_left(store: SqlRecordStore) -> None:
    writer = RecordWriter(store, flush_seconds=3_600, batch_size=2)
    writer.start()
    records = [sample_record() for _ in range(3)]
    for record in records:
        writer.submit(record)

    await writer.aclose()

    assert (writer.written, writer.pending) == (3, 0)
    for record in records:
        assert await store.get(record.request_id) == record


async def test_records_submitted_after_aclose_are_counted_as_dropped(
    store: SqlRecordStore,
) -> None:
    writer = RecordWriter(store, flush_seconds=3_600, batch_size=10)
    await writer.aclose()
    writer.submit(sample_record())
    assert (writer.dropped, writer.pending) == (1, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
async def unreachable_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqlRecordStore]:
    """A store whose database cannot be reached at all."""
    if request.param == "sqlite":
        # A folder where the file should be: it cannot be opened, not even by root.
        url = f"sqlite:///{tmp_path}"
    else:
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/seawall"
    unreachable = SqlRecordStore(create_engine(url))
    yield unreachable
    await unreachable.aclose()


async def test_records_are_kept_while_the_database_is_unreachable(
    unreachable_store: SqlRecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordWriter(
        unreachable_store, flush_seconds=0.01, batch_size=2, max_retry_seconds=0.02
    )
    writer.start()
    for _ in range(3):
        writer.submit(sample_record())

    await eventually(lambda: writer.failed_flushes >= 3)
    writer.submit(sample_record())
    assert (writer.written, writer.pending, writer.dropped) == (0, 4, 0)

    with caplog.at_level(logging.ERROR, logger="seawall.stores.record_writer"):
        await writer.aclose()
    assert writer.pending == 4
    assert "request records lost at shutdown: 4" in caplog.text


async def test_a_full_buffer_drops_new_records_and_warns(
    unreachable_store: SqlRecordStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RecordWriter(unreachable_store, flush_seconds=0.01, batch_size=3, max_pending=3)
    with caplog.at_level(logging.WARNING, logger="seawall.stores.record_writer"):
        writer.start()
        for _ in range(5):
            writer.submit(sample_record())
        await eventually(lambda: writer.failed_flushes >= 1)
        await writer.aclose()

    assert (writer.pending, writer.dropped) == (3, 2)
    assert "dropped 2 request records" in caplog.text


@dataclass
class Outage:
    """A store whose database can be made unreachable and brought back."""

    store: SqlRecordStore
    begin: Callable[[], Awaitable[None]]
    end: Callable[[], Awaitable[None]]


@pytest.fixture
async def sqlite_outage(tmp_path: Path) -> AsyncIterator[Outage]:
    """Another process holds the SQLite write lock longer than the store will wait."""
    path = tmp_path / "seawall.db"
    await upgrade(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)

    async def begin() -> None:
        holder.execute("BEGIN EXCLUSIVE")

    async def end() -> None:
        holder.execute("ROLLBACK")

    store = SqlRecordStore(create_engine(f"sqlite:///{path}", busy_timeout_s=0.05))
    yield Outage(store, begin, end)
    await store.aclose()
    holder.close()


@pytest.fixture
async def postgres_outage(migrated_postgres_url: str) -> AsyncIterator[Outage]:
    """The network between the store and the real PostgreSQL is cut, then restored."""
    proxy = TcpProxy(target_port=5432)
    await proxy.start()
    via_proxy = make_url(migrated_postgres_url).set(port=proxy.port)
    store = SqlRecordStore(create_engine(via_proxy.render_as_string(hide_password=False)))
    yield Outage(store, proxy.cut, proxy.start)
    await store.aclose()
    await proxy.cut()


@pytest.fixture
async def migrated_postgres_url(postgres_url: str) -> str:
    """The private PostgreSQL database, emptied and migrated."""
    await empty_postgres(postgres_url)
    await upgrade(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite_outage", "postgres_outage"])
def outage(request: pytest.FixtureRequest) -> Outage:
    """Each kind of outage (sync: it resolves async fixtures)."""
    chosen: Outage = request.getfixturevalue(request.param)
    return chosen


async def test_records_held_during_an_outage_are_written_after_recovery(outage: Outage) -> None:
    writer = RecordWriter(outage.store, flush_seconds=0.01, batch_size=100, max_retry_seconds=0.05)
    writer.start()
    before = sample_record()
    during = [sample_record() for _ in range(5)]
    try:
        writer.submit(before)
        await eventually(lambda: writer.written == 1)

        await outage.begin()
        for record in during:
            writer.submit(record)
        await eventually(lambda: writer.failed_flushes >= 2)
        assert (writer.written, writer.pending) == (1, 5)

        await outage.end()
        await eventually(lambda: writer.written == 6)
        assert writer.pending == 0
        for record in [before, *during]:
            assert await outage.store.get(record.request_id) == record
    finally:
        await writer.aclose()
