"""Where Seawall keeps state: SQL (SQLite or PostgreSQL) and Redis."""

from __future__ import annotations

from seawall.stores.database import async_url, create_engine, ping
from seawall.stores.migrate import current_revision, head_revision, upgrade, upgrade_engine
from seawall.stores.record_writer import RecordWriter
from seawall.stores.records import RecordStore, RequestRecord
from seawall.stores.redis_connection import RedisConnection
from seawall.stores.sql_records import SqlRecordStore

__all__ = [
    "RecordStore",
    "RecordWriter",
    "RedisConnection",
    "RequestRecord",
    "SqlRecordStore",
    "async_url",
    "create_engine",
    "current_revision",
    "head_revision",
    "ping",
    "upgrade",
    "upgrade_engine",
]
