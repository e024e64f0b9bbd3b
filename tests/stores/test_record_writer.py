"""RecordWriter: records leave the request path, reach the store in batches, survive outages."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from seawall.stores.database import create_engine
from seawall.stores.migrate import upgrade
from seawall.stores.record_spool import RecordSpool
from seawall.stores.record_writer import RecordWriter
from seawall.stores.records import RequestRecord
from seawall.stores.sql_records import SqlRecordStore
from seawall.stores.tables import requests
from tests.databases import empty_postgres
from tests.ports import free_port
from tests.resilience.fake_clock import FakeClock
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


async def test_without_a_spool_records_are_kept_in_memory_while_the_database_is_unreachable(
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


async def test_without_a_spool_a_full_buffer_drops_new_records_and_warns(
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
    url: str  # the database itself, never cut

    async def stored_ids(self) -> list[str]:
        """Every request id in the table, duplicates included (there must be none)."""
        return await stored_request_ids(self.url)


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
    yield Outage(store, begin, end, f"sqlite:///{path}")
    await store.aclose()
    holder.close()


@pytest.fixture
async def postgres_outage(migrated_postgres_url: str) -> AsyncIterator[Outage]:
    """The network between the store and the real PostgreSQL is cut, then restored."""
    proxy = TcpProxy(target_port=5432)
    await proxy.start()
    via_proxy = make_url(migrated_postgres_url).set(port=proxy.port)
    store = SqlRecordStore(create_engine(via_proxy.render_as_string(hide_password=False)))
    yield Outage(store, proxy.cut, proxy.start, migrated_postgres_url)
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


async def stored_request_ids(url: str) -> list[str]:
    """Every request id in the ``requests`` table of ``url``, duplicates included."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(requests.c.request_id))
            return list(result.scalars())
    finally:
        await engine.dispose()


def ids(records: list[RequestRecord]) -> list[str]:
    """Request ids, sorted, for comparing with what the table holds."""
    return sorted(record.request_id for record in records)


def spool_files(directory: Path) -> list[Path]:
    """Spool files left in ``directory``."""
    return sorted(directory.glob("records-*")) if directory.is_dir() else []


async def test_records_during_an_outage_go_to_disk_and_arrive_once_after_recovery(
    outage: Outage, tmp_path: Path
) -> None:
    spool = RecordSpool(tmp_path / "spool")
    writer = RecordWriter(
        outage.store, flush_seconds=0.01, batch_size=100, max_retry_seconds=0.05, spool=spool
    )
    writer.start()
    before = sample_record()
    during = [sample_record() for _ in range(5)]
    try:
        writer.submit(before)
        await eventually(lambda: writer.written == 1)

        await outage.begin()
        for record in during:
            writer.submit(record)
        await eventually(lambda: writer.failed_flushes >= 2 and writer.spooled >= 5)
        assert (writer.written, writer.pending, writer.dropped) == (1, 0, 0)

        await outage.end()
        await eventually(lambda: writer.replayed >= 5 and spool.backlog_bytes == 0)
    finally:
        await writer.aclose()

    assert sorted(await outage.stored_ids()) == ids([before, *during])
    for record in during:
        assert await outage.store.get(record.request_id) == record
    assert spool_files(tmp_path / "spool") == []


async def test_records_spooled_at_shutdown_during_an_outage_arrive_through_the_next_process(
    outage: Outage, tmp_path: Path
) -> None:
    stopping = RecordWriter(
        outage.store,
        flush_seconds=0.01,
        batch_size=100,
        max_retry_seconds=60,
        spool=RecordSpool(tmp_path / "spool"),
    )
    stopping.start()
    await outage.begin()
    records = [sample_record() for _ in range(20)]
    for record in records:
        stopping.submit(record)

    # SIGTERM while the database is away: nothing may be lost.
    await stopping.aclose()
    assert (stopping.written, stopping.pending, stopping.dropped) == (0, 0, 0)
    assert len(spool_files(tmp_path / "spool")) == 1

    await outage.end()
    starting = RecordWriter(
        outage.store, flush_seconds=0.01, batch_size=7, spool=RecordSpool(tmp_path / "spool")
    )
    starting.start()
    await eventually(lambda: starting.replayed == 20)
    await starting.aclose()

    assert sorted(await outage.stored_ids()) == ids(records)
    assert spool_files(tmp_path / "spool") == []


async def test_leftovers_of_a_killed_process_are_replayed_at_start_without_duplicates(
    store: SqlRecordStore, migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The killed process had stored some records before its last flush failed and it
    # spooled them all, and it died mid-line: replaying must neither lose nor repeat.
    records = [sample_record() for _ in range(30)]
    await store.write_batch(records[:10])
    killed = RecordSpool(tmp_path / "spool")
    killed.append(records)
    killed.close()
    [leftover] = spool_files(tmp_path / "spool")
    with leftover.open("ab") as file:
        file.write(b'{"request_id": "req_torn", "created_')

    writer = RecordWriter(
        store, flush_seconds=0.01, batch_size=8, spool=RecordSpool(leftover.parent)
    )
    with caplog.at_level(logging.WARNING, logger="seawall.stores.record_spool"):
        writer.start()
        await eventually(lambda: writer.replayed == 30)
        await writer.aclose()

    assert sorted(await stored_request_ids(migrated_url)) == ids(records)
    assert "torn last line" in caplog.text
    assert spool_files(tmp_path / "spool") == []


async def test_a_full_memory_spills_to_disk_instead_of_dropping(
    unreachable_store: SqlRecordStore, tmp_path: Path
) -> None:
    spool = RecordSpool(tmp_path / "spool")
    writer = RecordWriter(
        unreachable_store, flush_seconds=3_600, batch_size=3, max_pending=3, spool=spool
    )
    records = [sample_record() for _ in range(10)]
    for record in records:
        writer.submit(record)
    assert (writer.spooled, writer.pending, writer.dropped) == (9, 1, 0)

    await writer.aclose()
    assert (writer.spooled, writer.pending, writer.dropped) == (10, 0, 0)

    reader = RecordSpool(tmp_path / "spool")
    reader.claim_leftovers()
    replayed: list[RequestRecord] = []
    while (batch := reader.read_batch(100)) is not None:
        replayed.extend(batch.records)
        reader.mark_replayed(batch)
    reader.close()
    assert replayed == records


async def test_while_backing_off_the_store_rests_but_records_reach_disk_every_interval(
    unreachable_store: SqlRecordStore, tmp_path: Path
) -> None:
    clock = FakeClock()
    writer = RecordWriter(
        unreachable_store,
        flush_seconds=0.01,
        batch_size=100,
        max_retry_seconds=30,
        spool=RecordSpool(tmp_path / "spool"),
        clock=clock,
    )
    writer.start()
    try:
        writer.submit(sample_record())
        await eventually(lambda: writer.failed_flushes == 1 and writer.spooled == 1)

        # Time stands still, so the store is not due again; records still leave memory.
        for _ in range(3):
            writer.submit(sample_record())
            await eventually(lambda: writer.pending == 0)
        await asyncio.sleep(0.1)
        assert (writer.failed_flushes, writer.spooled) == (1, 4)

        clock.advance(31)
        await eventually(lambda: writer.failed_flushes == 2)
    finally:
        await writer.aclose()


class StalledStore:
    """A record store whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.batches: list[list[str]] = []

    async def write_batch(self, records: Sequence[RequestRecord]) -> None:
        """Wait for ``release``, then keep the ids."""
        await self.release.wait()
        self.batches.append([record.request_id for record in records])

    async def get(self, request_id: str) -> RequestRecord | None:
        """Not needed here."""
        return None

    async def ping(self) -> None:
        """Always reachable."""

    async def aclose(self) -> None:
        """Nothing to release."""


async def test_a_write_that_hangs_sends_memory_to_disk_after_one_interval(
    tmp_path: Path,
) -> None:
    # What a SIGKILL can lose is bounded by the flush interval even when the database
    # neither answers nor fails.
    store = StalledStore()
    spool = RecordSpool(tmp_path / "spool")
    writer = RecordWriter(store, flush_seconds=0.05, batch_size=100, spool=spool)
    writer.start()
    try:
        first = [sample_record() for _ in range(3)]
        for record in first:
            writer.submit(record)
        await eventually(lambda: writer.spooled == 3)
        assert writer.pending == 0

        later = [sample_record() for _ in range(2)]
        for record in later:
            writer.submit(record)
        await eventually(lambda: writer.spooled == 5)
        assert writer.pending == 0

        store.release.set()
        await eventually(lambda: spool.backlog_bytes == 0 and writer.pending == 0)
    finally:
        await writer.aclose()

    # Written from memory once, and replayed from disk: stored once, inserts being idempotent.
    written = {request_id for batch in store.batches for request_id in batch}
    assert written == set(ids([*first, *later]))
