"""Evaluation engine: operational metrics of runs, case metadata and tokens, slices.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Adds nullable columns only, so existing rows stay valid and the upgrade is a plain
``ALTER TABLE ... ADD COLUMN`` on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_RUN_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("latency_p50", sa.Float()),
    ("latency_p90", sa.Float()),
    ("latency_p95", sa.Float()),
    ("latency_p99", sa.Float()),
    ("throughput", sa.Float()),
    ("prompt_tokens", sa.BigInteger()),
    ("completion_tokens", sa.BigInteger()),
    ("cost", sa.Float()),
    ("currency", sa.String(3)),
]


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _case_columns() -> list[tuple[str, sa.types.TypeEngine[Any]]]:
    return [
        ("metadata", _json()),
        ("prompt_tokens", sa.Integer()),
        ("completion_tokens", sa.Integer()),
        ("attempts", _json()),
    ]


def upgrade() -> None:
    for name, type_ in _RUN_COLUMNS:
        op.add_column("runs", sa.Column(name, type_, nullable=True))
    op.add_column("run_metrics", sa.Column("detail", sa.Text(), nullable=True))
    for name, type_ in _case_columns():
        op.add_column("case_results", sa.Column(name, type_, nullable=True))
    op.create_table(
        "run_slices",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "field", "value", "metric", name="pk_run_slices"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_slices_run_id_runs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("run_slices")
    with op.batch_alter_table("case_results") as batch:
        for name, _ in _case_columns():
            batch.drop_column(name)
    with op.batch_alter_table("run_metrics") as batch:
        batch.drop_column("detail")
    with op.batch_alter_table("runs") as batch:
        for name, _ in _RUN_COLUMNS:
            batch.drop_column(name)
