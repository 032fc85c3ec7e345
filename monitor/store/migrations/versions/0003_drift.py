"""Drift: ingested stream batches and late labels, reference profiles, drift reports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("received_at", _timestamp(), nullable=False),
        sa.Column("first_ts", _timestamp(), nullable=False),
        sa.Column("last_ts", _timestamp(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stream_batches"),
    )
    op.create_index("ix_stream_batches_stream_last_ts", "stream_batches", ["stream", "last_ts"])
    op.create_index(
        "ix_stream_batches_stream_first_row",
        "stream_batches",
        ["stream", "first_row"],
        unique=True,
    )
    op.create_table(
        "stream_labels",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("received_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "record_id", name="pk_stream_labels"),
    )
    op.create_table(
        "drift_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("reference_hash", sa.String(128), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drift_profiles"),
    )
    op.create_index(
        "ix_drift_profiles_stream_reference_hash",
        "drift_profiles",
        ["stream", "reference_hash"],
        unique=True,
    )
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("window_key", sa.String(200), nullable=False),
        sa.Column("window_start", _timestamp(), nullable=True),
        sa.Column("window_end", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("dataset_drifted", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("columns", _json(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("html", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_drift_reports"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["drift_profiles.id"], name="fk_drift_reports_profile_id_drift_profiles"
        ),
    )
    op.create_index(
        "ix_drift_reports_stream_window_key",
        "drift_reports",
        ["stream", "window_key"],
        unique=True,
    )
    op.create_index("ix_drift_reports_stream_id", "drift_reports", ["stream", "id"])


def downgrade() -> None:
    for table in ("drift_reports", "drift_profiles", "stream_labels", "stream_batches"):
        op.drop_table(table)
