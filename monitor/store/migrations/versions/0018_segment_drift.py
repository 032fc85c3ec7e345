"""Drift per segment: a drift report keeps its segments' drift beside its columns.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Nullable: the reports stored before this revision have no segments.
    op.add_column("drift_reports", sa.Column("segments", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_reports") as batch:
        batch.drop_column("segments")
