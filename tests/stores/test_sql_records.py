"""The record store contract, against SQLite and the real PostgreSQL."""

from __future__ import annotations

from seawall.stores.sql_records import SqlRecordStore
from tests.stores.sample_records import sample_record


async def test_every_field_round_trips(store: SqlRecordStore) -> None:
    full = sample_record(
        created_at=1_735_689_600.123456,
        operation="embeddings",
        protocol="anthropic",
        stream=True,
        status_code=502,
        error_type="upstream_unavailable",
        usage_estimated=True,
        latency_ms=0.25,
        ttfb_ms=17.5,
        correlation_id="client-chosen-id",
        user="alice",
        session_id="session-1",
        feature="search",
    )
    sparse = sample_record(
        public_model=None,
        deployment=None,
        provider=None,
        upstream_model=None,
        prompt_tokens=0,
        completion_tokens=0,
    )
    await store.write_batch([full, sparse])

    assert await store.get(full.request_id) == full
    assert await store.get(sparse.request_id) == sparse


async def test_an_unknown_request_id_is_none(store: SqlRecordStore) -> None:
    assert await store.get("req_never_written") is None


async def test_duplicate_request_ids_are_ignored_not_errors(store: SqlRecordStore) -> None:
    first = sample_record(status_code=200)
    again = sample_record(request_id=first.request_id, status_code=500)
    other = sample_record()

    await store.write_batch([first, again])
    await store.write_batch([again, other])

    assert await store.get(first.request_id) == first
    assert await store.get(other.request_id) == other


async def test_a_large_batch_is_stored_whole(store: SqlRecordStore) -> None:
    records = [sample_record() for _ in range(2_000)]
    await store.write_batch(records)

    for record in (records[0], records[1_000], records[-1]):
        assert await store.get(record.request_id) == record


async def test_an_empty_batch_is_fine(store: SqlRecordStore) -> None:
    await store.write_batch([])


async def test_ping_succeeds(store: SqlRecordStore) -> None:
    await store.ping()
