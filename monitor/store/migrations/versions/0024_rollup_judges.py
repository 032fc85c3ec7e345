"""The judges' tokens and cost in each pair's rollup row: ``/metrics`` read them by grouping
every stored run's judge usage on each scrape, and their counters went down when retention
deleted runs. Backfilled from the stored judge usage of finished runs (usage of runs that
retention deleted before this revision was not counted then either).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | None = None
depends_on: str | None = None

_FINAL = ("succeeded", "failed", "interrupted")


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    with op.batch_alter_table("run_rollups") as batch:
        batch.add_column(sa.Column("judge_prompt_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("judge_completion_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("judge_cost", document, nullable=True))
    # The backfill with this revision's own tables, not the application's.
    meta = sa.MetaData()
    runs = sa.Table(
        "runs",
        meta,
        sa.Column("id"),
        sa.Column("suite"),
        sa.Column("model"),
        sa.Column("status"),
        sa.Column("finished_at"),
    )
    judges = sa.Table(
        "run_judges",
        meta,
        sa.Column("run_id"),
        sa.Column("prompt_tokens"),
        sa.Column("completion_tokens"),
        sa.Column("cost"),
        sa.Column("currency"),
    )
    rollups = sa.Table(
        "run_rollups",
        meta,
        sa.Column("suite"),
        sa.Column("model"),
        sa.Column("judge_prompt_tokens"),
        sa.Column("judge_completion_tokens"),
        sa.Column("judge_cost", document),
    )
    grouped = (
        sa.select(
            runs.c.suite,
            runs.c.model,
            judges.c.currency,
            sa.func.sum(judges.c.prompt_tokens),
            sa.func.sum(judges.c.completion_tokens),
            sa.func.sum(judges.c.cost),
        )
        .join(runs, runs.c.id == judges.c.run_id)
        .where(runs.c.status.in_(_FINAL), runs.c.finished_at.is_not(None))
        .group_by(runs.c.suite, runs.c.model, judges.c.currency)
    )
    totals: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"judge_prompt_tokens": None, "judge_completion_tokens": None, "judge_cost": {}}
    )
    connection = op.get_bind()
    for suite, model, currency, prompt, completion, cost in connection.execute(grouped):
        pair = totals[suite, model]
        for key, value in (
            ("judge_prompt_tokens", prompt),
            ("judge_completion_tokens", completion),
        ):
            if value is not None:
                pair[key] = (pair[key] or 0) + int(value)
        if cost is not None and currency is not None:
            pair["judge_cost"][currency] = pair["judge_cost"].get(currency, 0.0) + float(cost)
    for (suite, model), values in totals.items():
        connection.execute(
            sa.update(rollups)
            .where(rollups.c.suite == suite, rollups.c.model == model)
            .values(**values)
        )


def downgrade() -> None:
    with op.batch_alter_table("run_rollups") as batch:
        batch.drop_column("judge_cost")
        batch.drop_column("judge_completion_tokens")
        batch.drop_column("judge_prompt_tokens")
