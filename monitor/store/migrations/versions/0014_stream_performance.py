"""Realized performance of stream windows from late labels; labels indexed by arrival
(a stream's newest label is one index look-up).

Revision ID: 0014
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_performance",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("window_key", sa.String(200), nullable=False),
        sa.Column("window_start", _timestamp(), nullable=True),
        sa.Column("window_end", _timestamp(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("n_labelled", sa.Integer(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("comparison", _json(), nullable=False),
        sa.Column("groups", _json(), nullable=False),
        sa.Column("worse", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("baseline", sa.String(32), nullable=True),
        sa.Column("due_at", _timestamp(), nullable=False),
        sa.Column("labels_until", _timestamp(), nullable=True),
        sa.Column("labels_digest", sa.String(128), nullable=False),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("reopened_at", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["drift_reports.id"],
            name="fk_stream_performance_report_id_drift_reports",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stream_performance"),
    )
    op.create_index(
        "ix_stream_performance_stream_window_key",
        "stream_performance",
        ["stream", "window_key"],
        unique=True,
    )
    op.create_index(
        "ix_stream_performance_stream_window_end", "stream_performance", ["stream", "window_end"]
    )
    op.create_index(
        "ix_stream_labels_stream_received_at", "stream_labels", ["stream", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_stream_labels_stream_received_at", table_name="stream_labels")
    op.drop_index("ix_stream_performance_stream_window_end", table_name="stream_performance")
    op.drop_index("ix_stream_performance_stream_window_key", table_name="stream_performance")
    op.drop_table("stream_performance")
