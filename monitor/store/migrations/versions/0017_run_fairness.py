"""Group fairness measures of suite runs: demographic parity difference and ratio and
equalized odds difference over a case field, with their intervals.

Revision ID: 0017
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "run_fairness",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(200), nullable=False),
        sa.Column("groups", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_fairness_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "measure", name="pk_run_fairness"),
    )


def downgrade() -> None:
    op.drop_table("run_fairness")
