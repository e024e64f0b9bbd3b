"""The SQL schema as SQLAlchemy Core tables; Alembic revisions create it, this describes it.

When a table changes here, add a revision under ``migrations/versions`` that makes the
same change; ``tests/stores`` checks that the migrated schema and this one agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

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
    Column("tenant_id", Text),
    Column("key_id", Text),
    Column("client_ip", Text),
    Column("cost_usd", Double, nullable=False, server_default="0"),
    Column("route_decision", Text),
    Column("cache", Text),
    Column("refused", Boolean),
    Index("ix_requests_created_at", "created_at"),
    Index("ix_requests_tenant_id", "tenant_id", "created_at"),
)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
)

# Keys are stored only as a SHA-256 of the secret; ``prefix`` is the visible part.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("prefix", Text, nullable=False),
    Column("secret_hash", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("tenant_id", Text, ForeignKey("tenants.tenant_id"), nullable=False),
    Column("user", Text),
    Column("tier", Text, nullable=False),
    Column("models", Text),  # JSON list of public models; NULL: the tier's
    Column("endpoints", Text),  # JSON list of endpoints; NULL: the tier's
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double),
    Column("revoked_at", Double),
    Column("replaced_by", Text),
    Index("ix_api_keys_tenant_id", "tenant_id"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("budget_id", Text, primary_key=True),
    Column("scope", Text, nullable=False),  # tenant | key | user | session | feature
    Column("subject", Text, nullable=False),
    Column("period", Text, nullable=False),  # daily | monthly | total
    Column("soft_usd", Double),
    Column("hard_usd", Double),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("scope", "subject", "period", name="uq_budgets_scope"),
)

# Cache invalidations: entries stored before ``stored_before`` that match the tenant and
# model (NULL: any) are stale. Kept until no such entry can be alive.
cache_invalidations = Table(
    "cache_invalidations",
    metadata,
    Column("invalidation_id", Text, primary_key=True),
    Column("tenant_id", Text),
    Column("model", Text),
    Column("stored_before", Double, nullable=False),
    Column("created_at", Double, nullable=False),
)

# End users' feedback on answers: at most one per request (a new one replaces it).
feedback = Table(
    "feedback",
    metadata,
    Column("request_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("score", Double, nullable=False),  # 0 (bad) to 1 (good); thumbs: 0 or 1
    Column("thumbs", Text),  # up | down, when given as thumbs
    Column("comment", Text),
    Column("created_at", Double, nullable=False),
)

# The guard's detections: one row per request and phase (input or output checks) that
# found something, with one row per rule's finding in ``guard_detection_rules``.
guard_detections = Table(
    "guard_detections",
    metadata,
    Column("detection_id", Text, primary_key=True),
    Column("request_id", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("key_id", Text),
    Column("user", Text),
    Column("client_ip", Text),
    Column("route", Text),
    Column("model", Text),
    Column("phase", Text, nullable=False),  # input | output
    Column("action", Text, nullable=False),  # allow | flag | block | hold | redact
    Column("excerpt", Text, nullable=False),
    Index("ix_guard_detections_tenant_id", "tenant_id", "created_at"),
    Index("ix_guard_detections_created_at", "created_at"),
    Index("ix_guard_detections_request_id", "request_id"),
)

guard_detection_rules = Table(
    "guard_detection_rules",
    metadata,
    Column(
        "detection_id",
        Text,
        ForeignKey("guard_detections.detection_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("rule", Text, nullable=False),
    Column("score", Double, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_guard_detection_rules_rule", "rule"),
)

# Requests held by the guard until a person approves or rejects them.
guard_reviews = Table(
    "guard_reviews",
    metadata,
    Column("review_id", Text, primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("tenant_id", Text, nullable=False),
    Column("key_id", Text),
    Column("user", Text),
    Column("request_id", Text),
    Column("route", Text),
    Column("model", Text),
    Column("messages", Text, nullable=False),  # JSON: the request's messages
    Column("rules", Text, nullable=False),  # JSON: [{"rule", "score", "detail"}]
    Column("status", Text, nullable=False),  # pending | approved | rejected
    Column("reviewer", Text),
    Column("note", Text),
    Column("decided_at", Double),
    Index("ix_guard_reviews_status", "status", "tenant_id", "created_at"),
)
