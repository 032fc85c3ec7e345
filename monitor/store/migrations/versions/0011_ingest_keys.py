"""Idempotency keys of ingest batches: a retried batch sent with the same
``Idempotency-Key`` is answered from its key row instead of being stored twice.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_keys",
        sa.Column("stream", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", "key", name="pk_ingest_keys"),
    )
    op.create_index("ix_ingest_keys_stream_created_at", "ingest_keys", ["stream", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_keys_stream_created_at", table_name="ingest_keys")
    op.drop_table("ingest_keys")
