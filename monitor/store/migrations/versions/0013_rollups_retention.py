"""Rollups and retention: the latest state of each suite x model kept at write time
(``run_rollups``), tallies of what retention deleted (``retention_tallies``), and the
indexes retention's bounded deletes walk.

The rollup rows of an existing store are computed here from its runs and verdicts, with
the same fold the writes use from now on (``monitor.store.rollups.rebuild``): one pass over
the runs table, about a second per 100,000 runs.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_INDEXES = (
    ("ix_runs_finished_at", "runs", ["finished_at"]),
    ("ix_verdicts_created_at", "verdicts", ["created_at"]),
    ("ix_verdicts_baseline_run_id", "verdicts", ["baseline_run_id"]),
    ("ix_drift_reports_created_at", "drift_reports", ["created_at"]),
    ("ix_alert_history_at", "alert_history", ["at"]),
    ("ix_alert_outbox_created_at", "alert_outbox", ["created_at"]),
)


def upgrade() -> None:
    timestamp = sa.DateTime(timezone=True)
    op.create_table(
        "run_rollups",
        sa.Column("suite", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("interrupted", sa.BigInteger(), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("case_errors", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("last_finished_at", timestamp, nullable=True),
        sa.Column("last_success_at", timestamp, nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("success_run_id", sa.Integer(), nullable=True),
        sa.Column("last_duration_seconds", sa.Float(), nullable=True),
        sa.Column("last_cases", sa.Integer(), nullable=True),
        sa.Column("last_case_errors", sa.Integer(), nullable=True),
        sa.Column("last_cost", sa.Float(), nullable=True),
        sa.Column("last_currency", sa.String(3), nullable=True),
        sa.Column("verdict_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", timestamp, nullable=False),
        sa.PrimaryKeyConstraint("suite", "model", name="pk_run_rollups"),
    )
    op.create_table(
        "retention_tallies",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_retention_tallies"),
    )
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    # The fold itself, so the backfill and the writes can never disagree. It reads only
    # columns that exist at this revision.
    from monitor.store.rollups import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("retention_tallies")
    op.drop_table("run_rollups")
