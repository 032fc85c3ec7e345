"""Outbox rows carry a ``sequence`` per fingerprint (delivery order, and the number
receivers use to drop stale messages) and a ``retry_since`` (when ``max_age`` starts
counting); two statuses join: ``superseded`` and ``discarded``.

Existing rows are numbered in creation order per sink and fingerprint, and retry from
their creation time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_NEW = "status IN ('pending', 'delivered', 'superseded', 'dead', 'discarded')"
_OLD = "status IN ('pending', 'delivered', 'dead')"

# Rows of one sink and fingerprint, numbered 1, 2, ... in creation order (ids break ties).
_NUMBER = """
UPDATE alert_outbox SET sequence = (
    SELECT count(*) FROM alert_outbox AS earlier
    WHERE earlier.sink = alert_outbox.sink
      AND earlier.fingerprint = alert_outbox.fingerprint
      AND (earlier.created_at < alert_outbox.created_at
           OR (earlier.created_at = alert_outbox.created_at AND earlier.id <= alert_outbox.id))
), retry_since = created_at
"""


def upgrade() -> None:
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("retry_since", sa.DateTime(timezone=True), nullable=True))
    op.execute(_NUMBER)
    with op.batch_alter_table("alert_outbox") as batch:
        batch.alter_column("sequence", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("retry_since", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_constraint("ck_alert_outbox_status", type_="check")
        batch.create_check_constraint("ck_alert_outbox_status", _NEW)


def downgrade() -> None:
    # A superseded row's alert had a newer state queued: settled, like a delivered one,
    # so the old worker does not send it late. A discarded one was given up on: dead.
    op.execute("UPDATE alert_outbox SET status = 'delivered' WHERE status = 'superseded'")
    op.execute("UPDATE alert_outbox SET status = 'dead' WHERE status = 'discarded'")
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_constraint("ck_alert_outbox_status", type_="check")
        batch.create_check_constraint("ck_alert_outbox_status", _OLD)
        batch.drop_column("retry_since")
        batch.drop_column("sequence")
