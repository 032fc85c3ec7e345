"""Shadow streams: a shadow stream's predictions by record id, and when a production
window's joined comparison becomes final.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_predictions",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("received_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "record_id", name="pk_stream_predictions"),
    )
    op.create_index(
        "ix_stream_predictions_stream_received_at",
        "stream_predictions",
        ["stream", "received_at"],
    )
    op.add_column("drift_reports", sa.Column("shadow_due_at", _timestamp(), nullable=True))
    op.create_index(
        "ix_drift_reports_stream_shadow_due_at", "drift_reports", ["stream", "shadow_due_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_drift_reports_stream_shadow_due_at", table_name="drift_reports")
    with op.batch_alter_table("drift_reports") as batch:
        batch.drop_column("shadow_due_at")
    op.drop_index("ix_stream_predictions_stream_received_at", table_name="stream_predictions")
    op.drop_table("stream_predictions")
