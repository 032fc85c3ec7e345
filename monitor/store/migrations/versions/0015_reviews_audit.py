"""Approval gates, the audit log and tiers: a verdict carries its review (``needs_review``,
``approved`` or ``rejected``, with who, when and why), and ``audit_log`` records every
review, baseline promotion and silence. The log is append-only: on both backends a
trigger refuses any UPDATE or DELETE of its rows, whatever SQL a client sends. Runs and
baselines carry the suite's tier (empty for rows before: the suite as configured), and
the one active baseline is per suite x model x tier.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

_REFUSAL = "audit_log is append-only"

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log"
    f" BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    "CREATE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS"
    f" $$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse()",
    # TRUNCATE fires no row trigger: refuse it with a statement trigger.
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse()",
]


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    for table in ("runs", "baselines"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("tier", sa.String(200), nullable=False, server_default=""))
    _active_index(["suite", "model", "tier"])
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(sa.Column("review", sa.String(16), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("review_reason", sa.Text(), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_TRIGGERS if postgres else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_refuse()")
    # SQLite drops a table's triggers with it.
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("verdicts") as batch:
        batch.drop_column("review_reason")
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("review")
    # Keep one active baseline per suite x model: the newest of the tiers stays active.
    op.execute(
        "UPDATE baselines SET active = false WHERE active AND id < (SELECT max(b.id) FROM"
        " baselines b WHERE b.active AND b.suite = baselines.suite AND b.model = baselines.model)"
    )
    _active_index(["suite", "model"])
    for table in ("baselines", "runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tier")


def _active_index(columns: list[str]) -> None:
    """At most one active baseline per ``columns``, whatever races between replicas."""
    op.drop_index("uq_baselines_active", table_name="baselines")
    op.create_index(
        "uq_baselines_active",
        "baselines",
        columns,
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
