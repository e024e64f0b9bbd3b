"""Answer quality: whether each answer was a refusal.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``requests.refused``."""
    op.add_column("requests", sa.Column("refused", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop what ``upgrade`` created."""
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("refused")
