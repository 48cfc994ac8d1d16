"""Safety policy of issue 13: private columns, tenant keys, foreign keys and value rules per table,
and plan-wide lists (private column patterns).

Revision ID: 0003_safety_policy
Revises: 0002_dashboard_sessions
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_safety_policy"
down_revision: str | None = "0002_dashboard_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("table_constraints") as batch:
        batch.add_column(sa.Column("private_columns", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("tenant_key", sa.String(length=63), nullable=True))
        batch.add_column(sa.Column("ordinary_foreign_keys", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("value_rules", sa.JSON(), server_default="{}", nullable=False))
    op.create_table(
        "policy_lists",
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("policy_lists")
    with op.batch_alter_table("table_constraints") as batch:
        batch.drop_column("value_rules")
        batch.drop_column("ordinary_foreign_keys")
        batch.drop_column("tenant_key")
        batch.drop_column("private_columns")
