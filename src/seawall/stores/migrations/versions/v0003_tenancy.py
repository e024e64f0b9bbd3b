"""Tenants, API keys and budgets; who sent each request and what it cost.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_REQUEST_COLUMNS: tuple[sa.Column[object], ...] = (
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("key_id", sa.Text(), nullable=True),
    sa.Column("client_ip", sa.Text(), nullable=True),
    sa.Column("cost_usd", sa.Double(), nullable=False, server_default="0"),
    sa.Column("route_decision", sa.Text(), nullable=True),
)


def upgrade() -> None:
    """Create ``tenants``, ``api_keys`` and ``budgets``; add identity and cost to ``requests``."""
    op.create_table(
        "tenants",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=True),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("models", sa.Text(), nullable=True),
        sa.Column("endpoints", sa.Text(), nullable=True),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("replaced_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name="fk_api_keys_tenant_id_tenants"
        ),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("soft_usd", sa.Double(), nullable=True),
        sa.Column("hard_usd", sa.Double(), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name="pk_budgets"),
        sa.UniqueConstraint("scope", "subject", "period", name="uq_budgets_scope"),
    )
    for column in _REQUEST_COLUMNS:
        op.add_column("requests", column._copy())
    op.create_index("ix_requests_tenant_id", "requests", ["tenant_id", "created_at"])


def downgrade() -> None:
    """Drop what ``upgrade`` created."""
    op.drop_index("ix_requests_tenant_id", table_name="requests")
    with op.batch_alter_table("requests") as batch:
        for column in reversed(_REQUEST_COLUMNS):
            batch.drop_column(column.name)
    op.drop_table("budgets")
    op.drop_index("ix_api_keys_tenant_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
