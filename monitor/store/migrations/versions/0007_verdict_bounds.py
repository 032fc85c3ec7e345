"""Verdict metrics keep the one-sided bound of the change that goes with their one-sided
p-value: its value, its side (``upper`` or ``lower``) and its level (1 - alpha). Rows
stored before have none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("verdict_metrics") as batch:
        batch.add_column(sa.Column("bound", sa.Float(), nullable=True))
        batch.add_column(sa.Column("bound_side", sa.String(8), nullable=True))
        batch.add_column(sa.Column("bound_level", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verdict_metrics") as batch:
        batch.drop_column("bound_level")
        batch.drop_column("bound_side")
        batch.drop_column("bound")
