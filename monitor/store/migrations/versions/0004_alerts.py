"""Alerting: alert states, their history, the delivery outbox and silences.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    _create_states()
    _create_outbox()
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("matchers", _json(), nullable=False),
        sa.Column("starts_at", _timestamp(), nullable=False),
        sa.Column("ends_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_silences"),
    )
    op.create_index("ix_alert_silences_ends_at", "alert_silences", ["ends_at"])


def downgrade() -> None:
    for table in ("alert_silences", "alert_outbox", "alert_history", "alert_states"):
        op.drop_table(table)


def _create_states() -> None:
    op.create_table(
        "alert_states",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("labels", _json(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("active_since", _timestamp(), nullable=True),
        sa.Column("fired_at", _timestamp(), nullable=True),
        sa.Column("resolved_at", _timestamp(), nullable=True),
        sa.Column("notified_at", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.Column("links", _json(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_alert_states"),
    )
    op.create_index("ix_alert_states_phase", "alert_states", ["phase"])
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("from_phase", sa.String(16), nullable=False),
        sa.Column("to_phase", sa.String(16), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
    )
    op.create_index("ix_alert_history_fingerprint_id", "alert_history", ["fingerprint", "id"])


def _create_outbox() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("sink", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("next_attempt_at", _timestamp(), nullable=False),
        sa.Column("claimed_until", _timestamp(), nullable=True),
        sa.Column("delivered_at", _timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_outbox"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name="ck_alert_outbox_status"
        ),
    )
    op.create_index(
        "ix_alert_outbox_status_next_attempt_at", "alert_outbox", ["status", "next_attempt_at"]
    )
    op.create_index("ix_alert_outbox_fingerprint_sink", "alert_outbox", ["fingerprint", "sink"])
