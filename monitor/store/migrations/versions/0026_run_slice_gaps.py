"""The largest gap per slice field and metric of a suite run, with its 95% interval,
computed when the run is scored (the interval needs the cases ``run_slices`` does not
keep). Runs stored before have no rows: their point gaps are recomputed from their
slices, without an interval.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "run_slice_gaps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("gap", sa.Float(), nullable=False),
        sa.Column("best", sa.String(200), nullable=False),
        sa.Column("worst", sa.String(200), nullable=False),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_slice_gaps_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "field", "metric", name="pk_run_slice_gaps"),
    )


def downgrade() -> None:
    op.drop_table("run_slice_gaps")
