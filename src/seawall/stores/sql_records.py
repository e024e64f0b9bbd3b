"""Request records in SQL (SQLite or PostgreSQL), written in batches, idempotent by id."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, TextClause, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from seawall.stores.database import ping
from seawall.stores.records import RequestRecord
from seawall.stores.tables import requests

_FIELDS = tuple(field.name for field in dataclasses.fields(RequestRecord))

_InsertFactory = Callable[[Table], postgresql.Insert | sqlite.Insert]


class SqlRecordStore:
    """``RecordStore`` on an async SQLAlchemy engine; the schema comes from ``migrate``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._statement = _insert_for(engine.dialect.name)(requests).on_conflict_do_nothing(
            index_elements=[requests.c.request_id]
        )
        # SQLite runs executemany row by row through aiosqlite's thread, handing the GIL
        # back and forth with a busy event loop; one JSON document and one statement
        # writes a batch of 500 in about a millisecond instead.
        self._sqlite_batch = _sqlite_json_insert() if engine.dialect.name == "sqlite" else None

    async def write_batch(self, records: Sequence[RequestRecord]) -> None:
        """Insert records in one statement and transaction; stored ids are skipped, not errors."""
        if not records:
            return
        rows = [{name: getattr(record, name) for name in _FIELDS} for record in records]
        async with self._engine.begin() as connection:
            if self._sqlite_batch is not None:
                await connection.execute(self._sqlite_batch, {"rows": orjson.dumps(rows).decode()})
            else:
                # PostgreSQL: one prepared INSERT run for every row (asyncpg's executemany
                # pipelines them), compiled once and free of bound-parameter limits.
                await connection.execute(self._statement, rows)

    async def get(self, request_id: str) -> RequestRecord | None:
        """One record by Seawall's request id, or None."""
        query = select(requests).where(requests.c.request_id == request_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _record(row)

    async def ping(self) -> None:
        """Raise ``ServiceUnavailable`` if the database cannot be reached."""
        await ping(self._engine)

    async def aclose(self) -> None:
        """Close pooled connections (the engine stays usable; it reconnects on demand)."""
        await self._engine.dispose()


def _insert_for(dialect: str) -> _InsertFactory:
    # Both dialects spell "skip rows whose key exists" as ON CONFLICT DO NOTHING.
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"no record store for SQL dialect {dialect!r}")


def _sqlite_json_insert() -> TextClause:
    # Column names come from the table definition, never from input.
    columns = ", ".join(f'"{name}"' for name in _FIELDS)
    values = ", ".join(f"json_extract(value, '$.{name}')" for name in _FIELDS)
    return text(
        f"INSERT INTO requests ({columns}) SELECT {values} FROM json_each(:rows) "
        "WHERE true ON CONFLICT (request_id) DO NOTHING"
    )


def _record(row: Any) -> RequestRecord:
    return RequestRecord(**{name: row[name] for name in _FIELDS})
