"""Several replicas share one store: runs become a work queue (``slot_at``, one live run
per schedule slot; ``lease_owner``, the replica that claimed a run; ``retry_of``, the run
an expired lease re-runs) and the replicas announce themselves in ``replicas``.

Revision ID: 0012
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None

_LIVE = sa.text("status != 'interrupted'")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("slot_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("retry_of", sa.Integer(), nullable=True))
    op.create_index("ix_runs_lease_owner", "runs", ["lease_owner"])
    op.create_index(
        "uq_runs_suite_model_slot_at",
        "runs",
        ["suite", "model", "slot_at"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "replicas",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leader", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_replicas"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_index("uq_runs_suite_model_slot_at", table_name="runs")
    op.drop_index("ix_runs_lease_owner", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("retry_of")
        batch.drop_column("lease_owner")
        batch.drop_column("slot_at")
