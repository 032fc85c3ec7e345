"""Judge metrics of a run: the judge, the prompt's sha256, requests, judge errors, and the
judge's tokens and cost, apart from the evaluated model's; judge answers kept for reuse.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "run_judges",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("first_error", sa.Text(), nullable=True),
        sa.Column("agreement", sa.Float(), nullable=True),
        sa.Column("cached", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_judges_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "metric", name="pk_run_judges"),
    )
    op.create_table(
        "judge_answers",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("judge", sa.String(200), nullable=False),
        sa.Column("answer", json_type(), nullable=False),
        sa.Column("logprobs", json_type(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_judge_answers"),
    )


def downgrade() -> None:
    op.drop_table("judge_answers")
    op.drop_table("run_judges")
