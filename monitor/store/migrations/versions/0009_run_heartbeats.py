"""Runs carry a heartbeat: the process that owns a queued or running run refreshes
``runs.heartbeat_at``, and any replica's sweep finishes a run whose heartbeat is older
than ``[store] stale_after`` as ``interrupted``. Unfinished runs stored before get their
start (or creation) time, so an orphan of an older version is swept too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE runs SET heartbeat_at = COALESCE(started_at, created_at)"
        " WHERE status IN ('queued', 'running')"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
