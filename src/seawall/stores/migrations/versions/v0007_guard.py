"""The guard's detection log and review queue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``guard_detections``, ``guard_detection_rules`` and ``guard_reviews``."""
    op.create_table(
        "guard_detections",
        sa.Column("detection_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("user", sa.Text(), nullable=True),
        sa.Column("client_ip", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("phase", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("detection_id", name="pk_guard_detections"),
    )
    op.create_index(
        "ix_guard_detections_tenant_id", "guard_detections", ["tenant_id", "created_at"]
    )
    op.create_index("ix_guard_detections_created_at", "guard_detections", ["created_at"])
    op.create_index("ix_guard_detections_request_id", "guard_detections", ["request_id"])
    op.create_table(
        "guard_detection_rules",
        sa.Column("detection_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("detection_id", "position", name="pk_guard_detection_rules"),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            ["guard_detections.detection_id"],
            name="fk_guard_detection_rules_detection_id_guard_detections",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_guard_detection_rules_rule", "guard_detection_rules", ["rule"])
    op.create_table(
        "guard_reviews",
        sa.Column("review_id", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("user", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("review_id", name="pk_guard_reviews"),
    )
    op.create_index(
        "ix_guard_reviews_status", "guard_reviews", ["status", "tenant_id", "created_at"]
    )


def downgrade() -> None:
    """Drop what ``upgrade`` created."""
    op.drop_table("guard_reviews")
    op.drop_table("guard_detection_rules")
    op.drop_table("guard_detections")
