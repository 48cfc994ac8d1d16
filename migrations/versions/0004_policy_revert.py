"""Undo (issue 16): whether the policy lets a table's executed changes be reverted.

Revision ID: 0004_policy_revert
Revises: 0003_safety_policy
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_policy_revert"
down_revision: str | None = "0003_safety_policy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("table_constraints") as batch:
        batch.add_column(sa.Column("revert", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("table_constraints") as batch:
        batch.drop_column("revert")
