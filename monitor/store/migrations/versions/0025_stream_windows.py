"""Stream windows as queued work: the scheduling leader queues each due window of a
stream, any replica claims one with a lease and judges it.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("window_key", sa.String(200), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("window_start", _timestamp(), nullable=True),
        sa.Column("window_end", _timestamp(), nullable=True),
        sa.Column("first_row", sa.BigInteger(), nullable=True),
        sa.Column("end_row", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stream_windows"),
    )
    op.create_index(
        "ix_stream_windows_stream_window_key",
        "stream_windows",
        ["stream", "window_key"],
        unique=True,
    )
    op.create_index("ix_stream_windows_stream_position", "stream_windows", ["stream", "position"])


def downgrade() -> None:
    op.drop_index("ix_stream_windows_stream_position", table_name="stream_windows")
    op.drop_index("ix_stream_windows_stream_window_key", table_name="stream_windows")
    op.drop_table("stream_windows")
