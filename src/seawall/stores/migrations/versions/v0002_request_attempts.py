"""Record every upstream attempt of a request (fallbacks and retries).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``requests.attempts``."""
    op.add_column("requests", sa.Column("attempts", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop ``requests.attempts``."""
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("attempts")
