"""Verdicts: baselines record their dataset, one active baseline per suite x model, verdicts
with their per-metric comparisons, and the endpoint's own scores kept with each case.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("baselines") as batch:
        batch.add_column(
            sa.Column("dataset_sha256", sa.String(128), nullable=False, server_default="")
        )
    # At most one active baseline per suite x model, whatever races between replicas.
    op.create_index(
        "uq_baselines_active",
        "baselines",
        ["suite", "model"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    with op.batch_alter_table("case_results") as batch:
        batch.add_column(sa.Column("model_scores", _json(), nullable=True))
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("baseline_run_id", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dataset_changed", sa.Boolean(), nullable=False),
        sa.Column("changes", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_verdicts_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["baseline_run_id"], ["runs.id"], name="fk_verdicts_baseline_run_id_runs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_verdicts"),
        sa.UniqueConstraint("run_id", "baseline_run_id", name="uq_verdicts_run_id_baseline_run_id"),
    )
    op.create_index("ix_verdicts_suite_model_id", "verdicts", ["suite", "model", "id"])
    op.create_table(
        "verdict_metrics",
        sa.Column("verdict_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("slice", sa.String(400), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("new", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("p_adjusted", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cases_needed", sa.Integer(), nullable=True),
        sa.Column("unpaired", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=True),
        sa.Column("improved", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["verdict_id"],
            ["verdicts.id"],
            name="fk_verdict_metrics_verdict_id_verdicts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("verdict_id", "metric", "slice", name="pk_verdict_metrics"),
    )


def downgrade() -> None:
    op.drop_table("verdict_metrics")
    op.drop_table("verdicts")
    with op.batch_alter_table("case_results") as batch:
        batch.drop_column("model_scores")
    op.drop_index("uq_baselines_active", table_name="baselines")
    with op.batch_alter_table("baselines") as batch:
        batch.drop_column("dataset_sha256")
