"""Response caching: the cache result of each request, and cache invalidations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``requests.cache``; create ``cache_invalidations``."""
    op.add_column("requests", sa.Column("cache", sa.Text(), nullable=True))
    op.create_table(
        "cache_invalidations",
        sa.Column("invalidation_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("stored_before", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("invalidation_id", name="pk_cache_invalidations"),
    )


def downgrade() -> None:
    """Drop what ``upgrade`` created."""
    op.drop_table("cache_invalidations")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("cache")
