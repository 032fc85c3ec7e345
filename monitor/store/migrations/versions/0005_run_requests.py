"""Run requests: queued runs, and the requests of the compatible runs API.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

``runs.status`` may now be ``queued`` (a run accepted by the API and waiting for its turn),
and a run may belong to a request (``runs.request_id``): one request of
``POST /v1/runs`` is one ``run_requests`` row and one run per model.

Changing a CHECK constraint recreates ``runs`` on SQLite (batch mode). Tables that refer
to ``runs`` cascade on delete, so ``monitor.store.migrate`` runs SQLite migrations with
foreign keys off and checks them before committing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_OLD_STATUSES = "'running', 'succeeded', 'failed', 'interrupted'"
_NEW_STATUSES = "'queued', " + _OLD_STATUSES


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "run_requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("suite", sa.String(200), nullable=False),
        sa.Column("models", _json(), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=True),
        sa.Column("baseline", sa.String(200), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_requests"),
    )
    op.create_index("ix_run_requests_created_at", "run_requests", ["created_at"])
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("ck_runs_status", type_="check")
        batch.create_check_constraint("ck_runs_status", f"status IN ({_NEW_STATUSES})")
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
        batch.create_foreign_key(
            "fk_runs_request_id_run_requests", "run_requests", ["request_id"], ["id"]
        )
        batch.create_index("ix_runs_request_id", ["request_id"])


def downgrade() -> None:
    # Queued runs cannot exist under the old constraint: they never started, so they go.
    op.execute("DELETE FROM runs WHERE status = 'queued'")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_request_id")
        batch.drop_constraint("fk_runs_request_id_run_requests", type_="foreignkey")
        batch.drop_column("request_id")
        batch.drop_constraint("ck_runs_status", type_="check")
        batch.create_check_constraint("ck_runs_status", f"status IN ({_OLD_STATUSES})")
    op.drop_index("ix_run_requests_created_at", table_name="run_requests")
    op.drop_table("run_requests")
