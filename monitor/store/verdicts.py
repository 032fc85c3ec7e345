"""Statements for baselines and verdicts.

Each function takes an open connection; ``Store`` decides the transaction. A promotion
deactivates the previous baseline and activates the new one in the same transaction, and a
partial unique index keeps at most one active baseline per suite x model even when two
replicas promote at once. A verdict and its metric rows are written together.

A review decides a verdict that waits for one exactly once: the update is conditional on
the verdict still being ``needs_review``, so two reviewers racing (on two replicas) get
one decision and one refusal, and the decision goes into the audit log in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update

from monitor.records import (
    Baseline,
    CaseChange,
    LatestScore,
    MetricComparison,
    Review,
    RunStatus,
    Verdict,
)
from monitor.store import audit, rollups
from monitor.store.reads import latest_score
from monitor.store.tables import (
    baselines,
    run_metrics,
    run_rollups,
    runs,
    verdict_metrics,
    verdicts,
)

__all__ = [
    "active_baseline",
    "add_verdict",
    "baseline_scores",
    "get_baseline",
    "get_verdict",
    "latest_verdicts",
    "list_baselines",
    "list_verdicts",
    "promote",
    "review",
]


def promote(
    connection: Connection,
    run_id: int,
    *,
    model: str | None,
    by: str,
    reason: str,
    at: datetime,
    only_if_none: bool = False,
) -> Baseline | None:
    """Make ``run_id`` the active baseline of its suite x ``model`` (the run's own model when
    None; another model's name pins a run as the baseline of a role, e.g. a candidate
    judged against production). Only a succeeded run can be a baseline. With
    ``only_if_none``, nothing happens (None) when a baseline is already active."""
    run = connection.execute(
        select(runs.c.suite, runs.c.model, runs.c.status, runs.c.dataset_sha256, runs.c.tier).where(
            runs.c.id == run_id
        )
    ).one_or_none()
    if run is None:
        raise LookupError(f"run {run_id} not found")
    if run.status != RunStatus.SUCCEEDED.value:
        raise ValueError(
            f"run {run_id} is {run.status}: only a succeeded run can become a baseline"
        )
    model = model or run.model
    current = _active(connection, run.suite, model, run.tier)
    if current is not None and only_if_none:
        return None
    if current is not None:
        connection.execute(
            update(baselines).where(baselines.c.id == current.id).values(active=False)
        )
    values = {
        "suite": run.suite,
        "model": model,
        "run_id": run_id,
        "dataset_sha256": run.dataset_sha256,
        "promoted_at": at,
        "promoted_by": by,
        "reason": reason,
        "active": True,
        "tier": run.tier,
    }
    new_id = connection.execute(insert(baselines).values(**values)).inserted_primary_key
    assert new_id is not None
    return Baseline(id=int(new_id[0]), **values)


def active_baseline(
    connection: Connection, suite: str, model: str, tier: str = ""
) -> Baseline | None:
    """The active baseline of ``suite`` x ``model`` for runs of ``tier``, if any."""
    row = _active(connection, suite, model, tier)
    return None if row is None else _baseline(row)


def get_baseline(connection: Connection, baseline_id: int) -> Baseline | None:
    row = connection.execute(select(baselines).where(baselines.c.id == baseline_id)).one_or_none()
    return None if row is None else _baseline(row)


def list_baselines(
    connection: Connection, *, suite: str | None, model: str | None, limit: int
) -> list[Baseline]:
    """Promotions, newest first (the history of who promoted what, when and why)."""
    query = select(baselines).order_by(baselines.c.id.desc()).limit(limit)
    if suite is not None:
        query = query.where(baselines.c.suite == suite)
    if model is not None:
        query = query.where(baselines.c.model == model)
    return [_baseline(row) for row in connection.execute(query)]


def add_verdict(
    connection: Connection,
    *,
    run_id: int,
    baseline_run_id: int,
    suite: str,
    model: str,
    outcome: str,
    reason: str,
    at: datetime,
    dataset_changed: bool,
    metrics: Sequence[MetricComparison],
    changes: Sequence[CaseChange],
    review: Review | None = None,
) -> int:
    """Store a verdict and its metric rows; a verdict of the same run against the same
    baseline run replaces the earlier one, keeping a review already decided (the same two
    runs give the same verdict, and a person's decision is not undone by judging again)."""
    same = (verdicts.c.run_id == run_id, verdicts.c.baseline_run_id == baseline_run_id)
    decided: dict[str, Any] = {}
    if review is not None:
        earlier = connection.execute(
            select(verdicts.c.review, verdicts.c.reviewed_by, verdicts.c.reviewed_at)
            .add_columns(verdicts.c.review_reason)
            .where(*same)
        ).one_or_none()
        if earlier is not None and earlier.review in (Review.APPROVED, Review.REJECTED):
            decided = dict(earlier._mapping)
    connection.execute(verdicts.delete().where(*same))
    result = connection.execute(
        insert(verdicts)
        .values(
            run_id=run_id,
            baseline_run_id=baseline_run_id,
            suite=suite,
            model=model,
            outcome=outcome,
            reason=reason,
            created_at=at,
            dataset_changed=dataset_changed,
            changes=[asdict(change) for change in changes],
            review=None if review is None else review.value,
        )
        .values(**decided)
    )
    assert result.inserted_primary_key is not None
    verdict_id = int(result.inserted_primary_key[0])
    if metrics:
        connection.execute(
            insert(verdict_metrics),
            [
                {"verdict_id": verdict_id, "position": position, **asdict(metric)}
                for position, metric in enumerate(metrics)
            ],
        )
    rollups.note_verdict(connection, verdict_id, run_id)
    return verdict_id


def review(
    connection: Connection, verdict_id: int, *, approve: bool, by: str, reason: str, at: datetime
) -> Verdict:
    """Approve or reject a verdict that waits for review, and log it. ``LookupError`` for
    an unknown verdict; ``ValueError`` for one that needs no review or is decided."""
    row = connection.execute(select(verdicts).where(verdicts.c.id == verdict_id)).one_or_none()
    if row is None:
        raise LookupError(f"verdict {verdict_id} not found")
    where = f"verdict {verdict_id} (run {row.run_id}, {row.suite} on {row.model})"
    if row.review is None:
        raise ValueError(f"{where} needs no review: suite {row.suite} does not ask for one")
    decision = Review.APPROVED if approve else Review.REJECTED
    changed = connection.execute(
        update(verdicts)
        .where(verdicts.c.id == verdict_id, verdicts.c.review == Review.NEEDS_REVIEW.value)
        .values(review=decision.value, reviewed_by=by, reviewed_at=at, review_reason=reason)
    ).rowcount
    if changed != 1:
        # Decided before, or by another replica since the read above: say by whom.
        now = connection.execute(
            select(verdicts.c.review, verdicts.c.reviewed_by, verdicts.c.reviewed_at).where(
                verdicts.c.id == verdict_id
            )
        ).one()
        when = now.reviewed_at.isoformat() if now.reviewed_at else "an unknown time"
        raise ValueError(f"{where} was already {now.review} by {now.reviewed_by} at {when}")
    audit.append(
        connection,
        at=at,
        actor=by,
        action=f"review.{decision.value}",
        target=f"verdict {verdict_id}",
        reason=reason,
        details={
            "verdict_id": verdict_id,
            "run_id": row.run_id,
            "baseline_run_id": row.baseline_run_id,
            "suite": row.suite,
            "model": row.model,
            "outcome": row.outcome,
        },
    )
    found = get_verdict(connection, verdict_id)
    assert found is not None
    return found


def get_verdict(connection: Connection, verdict_id: int) -> Verdict | None:
    row = connection.execute(select(verdicts).where(verdicts.c.id == verdict_id)).one_or_none()
    return None if row is None else _verdicts(connection, [row])[0]


def list_verdicts(
    connection: Connection,
    *,
    suite: str | None = None,
    model: str | None = None,
    run_id: int | None = None,
    baseline_run_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Verdict]:
    """Verdicts, newest first, with their metrics."""
    query = select(verdicts).order_by(verdicts.c.id.desc()).limit(limit)
    for column, value in (
        (verdicts.c.suite, suite),
        (verdicts.c.model, model),
        (verdicts.c.run_id, run_id),
        (verdicts.c.baseline_run_id, baseline_run_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(verdicts.c.id < before_id)
    return _verdicts(connection, list(connection.execute(query)))


def latest_verdicts(connection: Connection) -> list[Verdict]:
    """The newest verdict of a scheduled run of every suite x model (for the metrics
    exporter): a CI gate's or an API run's verdict on a candidate says nothing about what
    serves in production. Read from the pairs' rollup rows, one verdict per pair."""
    query = (
        select(verdicts)
        .join(run_rollups, run_rollups.c.verdict_id == verdicts.c.id)
        .order_by(verdicts.c.id)
    )
    return _verdicts(connection, list(connection.execute(query)))


def baseline_scores(connection: Connection) -> list[LatestScore]:
    """Every metric of each suite x model's active baseline run (of no tier)."""
    query = (
        select(baselines.c.suite, baselines.c.model, runs.c.finished_at, run_metrics)
        .join(runs, runs.c.id == baselines.c.run_id)
        .join(run_metrics, run_metrics.c.run_id == runs.c.id)
        # The exporter follows scheduled runs, which run the suite as configured.
        .where(baselines.c.active, baselines.c.tier == "")
        .order_by(baselines.c.suite, baselines.c.model, run_metrics.c.name)
    )
    return [latest_score(row) for row in connection.execute(query)]


def _active(connection: Connection, suite: str, model: str, tier: str) -> Row[Any] | None:
    return connection.execute(
        select(baselines).where(
            and_(
                baselines.c.suite == suite,
                baselines.c.model == model,
                baselines.c.tier == tier,
                baselines.c.active,
            )
        )
    ).one_or_none()


def _baseline(row: Row[Any]) -> Baseline:
    return Baseline(
        id=row.id,
        suite=row.suite,
        model=row.model,
        run_id=row.run_id,
        dataset_sha256=row.dataset_sha256,
        promoted_at=row.promoted_at,
        promoted_by=row.promoted_by,
        reason=row.reason,
        active=bool(row.active),
        tier=row.tier,
    )


_METRIC_FIELDS = tuple(MetricComparison.__dataclass_fields__)
_CHANGE_FIELDS = tuple(CaseChange.__dataclass_fields__)


def _verdicts(connection: Connection, rows: Sequence[Row[Any]]) -> list[Verdict]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    by_verdict: dict[int, list[MetricComparison]] = {i: [] for i in ids}
    query = (
        select(verdict_metrics)
        .where(verdict_metrics.c.verdict_id.in_(ids))
        .order_by(verdict_metrics.c.verdict_id, verdict_metrics.c.position)
    )
    for m in connection.execute(query):
        by_verdict[m.verdict_id].append(
            MetricComparison(**{name: getattr(m, name) for name in _METRIC_FIELDS})
        )
    return [
        Verdict(
            id=row.id,
            run_id=row.run_id,
            baseline_run_id=row.baseline_run_id,
            suite=row.suite,
            model=row.model,
            outcome=row.outcome,
            reason=row.reason,
            created_at=row.created_at,
            dataset_changed=bool(row.dataset_changed),
            metrics=tuple(by_verdict[row.id]),
            changes=tuple(
                CaseChange(**{name: change.get(name) for name in _CHANGE_FIELDS})
                for change in row.changes
            ),
            review=None if row.review is None else Review(row.review),
            reviewed_by=row.reviewed_by,
            reviewed_at=row.reviewed_at,
            review_reason=row.review_reason,
        )
        for row in rows
    ]
