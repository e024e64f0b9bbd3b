"""The SQL engine: one async engine per process, SQLite by default, PostgreSQL in production.

Operators write plain URLs (``sqlite:///data/seawall.db``, ``sqlite:///:memory:``,
``postgresql://user@host/db``); this module maps them to the async drivers
(aiosqlite, asyncpg) and applies the settings each backend needs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from seawall.errors import ServiceUnavailable

_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"})
_POSTGRES_SCHEMES = frozenset(
    {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg2", "postgresql+psycopg"}
)
_MEMORY_DATABASES = frozenset({"", ":memory:"})

# Reconnect before a firewall or PgBouncer silently drops an idle connection.
_POSTGRES_POOL_RECYCLE_S = 1800
# An upper bound for any one statement, so a wedged server cannot hang a flush forever.
_POSTGRES_COMMAND_TIMEOUT_S = 30.0


def async_url(url: str) -> URL:
    """The URL with its async driver: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
    parsed = make_url(url)
    if parsed.drivername in _SQLITE_SCHEMES:
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in _POSTGRES_SCHEMES:
        parsed = parsed.set(drivername="postgresql+asyncpg")
        # libpq spells it sslmode; asyncpg spells it ssl.
        query = dict(parsed.query)
        if "sslmode" in query and "ssl" not in query:
            query["ssl"] = query.pop("sslmode")
        return parsed.set(query=query)
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
    )


def is_memory_sqlite(url: URL) -> bool:
    """Whether the URL names an in-memory SQLite database (gone when its engine is)."""
    return url.get_backend_name() == "sqlite" and (url.database or "") in _MEMORY_DATABASES


def create_engine(
    url: str,
    *,
    connect_timeout_s: float = 5.0,
    busy_timeout_s: float = 5.0,
    pool_size: int = 5,
    max_overflow: int = 10,
) -> AsyncEngine:
    """An async engine for a ``sqlite://`` or ``postgresql://`` URL, tuned for the gateway."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target, busy_timeout_s=busy_timeout_s)
    return create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=connect_timeout_s,
        pool_recycle=_POSTGRES_POOL_RECYCLE_S,
        # A pooled connection may have died with a database restart; check before use.
        pool_pre_ping=True,
        connect_args={
            "timeout": connect_timeout_s,
            "command_timeout": _POSTGRES_COMMAND_TIMEOUT_S,
            "server_settings": {"application_name": "seawall"},
        },
    )


def _sqlite_engine(target: URL, *, busy_timeout_s: float) -> AsyncEngine:
    if not is_memory_sqlite(target) and target.database:
        Path(target.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # sqlite3's own timeout installs the busy handler before the first statement runs,
    # so even the journal_mode switch below waits for other workers instead of failing.
    engine = create_async_engine(target, connect_args={"timeout": busy_timeout_s})
    busy_ms = int(busy_timeout_s * 1000)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        # WAL lets several gateway processes read while one writes.
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL survives a process crash; only power loss can lose the last commits.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
    return engine


async def ping(engine: AsyncEngine, *, timeout_s: float = 5.0) -> None:
    """Raise ``ServiceUnavailable`` unless the database answers ``SELECT 1`` in time."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    # Any failure means "not ready": refused, timed out, bad credentials, missing database.
    except Exception as exc:
        raise ServiceUnavailable(
            f"database {engine.dialect.name} is unreachable ({type(exc).__name__})"
        ) from exc
