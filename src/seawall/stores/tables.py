"""The SQL schema as SQLAlchemy Core tables; Alembic revisions create it, this describes it.

When a table changes here, add a revision under ``migrations/versions`` that makes the
same change; ``tests/stores`` checks that the migrated schema and this one agree.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Index, Integer, MetaData, Table, Text

# Deterministic constraint names, so later revisions can drop or alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# One row per accepted request; columns mirror ``records.RequestRecord`` field by field.
requests = Table(
    "requests",
    metadata,
    Column("request_id", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("operation", Text, nullable=False),
    Column("protocol", Text, nullable=False),
    Column("public_model", Text),
    Column("deployment", Text),
    Column("provider", Text),
    Column("upstream_model", Text),
    Column("stream", Boolean, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("error_type", Text),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("usage_estimated", Boolean, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("ttfb_ms", Double),
    Column("attempts", Text),
    Column("correlation_id", Text),
    Column("user", Text),
    Column("session_id", Text),
    Column("feature", Text),
    Index("ix_requests_created_at", "created_at"),
)
