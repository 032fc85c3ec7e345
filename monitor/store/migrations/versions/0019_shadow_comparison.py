"""Shadow comparison per stream window: stored with the window's drift report.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    json = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    op.add_column("drift_reports", sa.Column("shadow", json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_reports") as batch:
        batch.drop_column("shadow")
