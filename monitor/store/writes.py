"""Statements that change the store, each meant to run inside one write transaction.

The caller (``Store``) opens the transaction, so a function either takes effect whole or
not at all. Arguments are validated before any statement runs: a bad call should fail
with a ``ValueError`` naming the argument, not with a constraint error from the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.sql.dml import Insert

from monitor.errors import StoreError
from monitor.records import (
    CaseResult,
    CatalogModel,
    CatalogSuite,
    FairnessValue,
    JudgeUsage,
    MetricValue,
    RunOperations,
    RunStatus,
    SliceGap,
    SliceMetric,
)
from monitor.store import rollups
from monitor.store.engine import dialect_insert
from monitor.store.tables import (
    NAME,
    case_results,
    judge_answers,
    models,
    run_fairness,
    run_judges,
    run_metrics,
    run_slice_gaps,
    run_slices,
    runs,
    suites,
)

__all__ = [
    "append_cases",
    "check_catalog",
    "check_finish",
    "create_run",
    "finish_run",
    "interrupt_running",
    "interrupt_stale",
    "keep_judge_answer",
    "start_run",
    "sync_catalog",
    "touch_runs",
]


_UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)


def check_catalog(models: Sequence[CatalogModel], suites: Sequence[CatalogSuite]) -> None:
    """Refuse a catalog that names a model or suite twice: which one would win?"""
    for kind, names in (("models", [m.name for m in models]), ("suites", [s.name for s in suites])):
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                raise ValueError(f"{kind}[{index}]: duplicate name {name!r}")
            seen.add(name)


def check_finish(
    status: RunStatus,
    metrics: Sequence[MetricValue],
    slices: Sequence[SliceMetric] = (),
    fairness: Sequence[FairnessValue] = (),
    gaps: Sequence[SliceGap] = (),
) -> None:
    """Refuse a non-final status and metric values SQLite could not store.

    SQLite stores NaN as NULL, so a NaN metric would fail on one backend and succeed on
    the other; refusing it everywhere keeps the two backends' contracts identical.
    """
    if RunStatus(status) in _UNFINISHED:
        raise ValueError(f"status must be final (succeeded, failed, interrupted), got: {status}")
    for index, metric in enumerate(metrics):
        for field in ("value", "lower", "upper"):
            number = getattr(metric, field)
            if number is not None and not math.isfinite(number):
                raise ValueError(
                    f"metrics[{index}] {metric.name!r}: {field} must be finite, got: {number}"
                )
    for index, item in enumerate(slices):
        for field in ("score", "lower", "upper"):
            number = getattr(item, field)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"slices[{index}] {item.metric!r}: {field} must be finite")
    for index, value in enumerate(fairness):
        for field in ("value", "lower", "upper"):
            number = getattr(value, field)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"fairness[{index}] {value.measure!r}: {field} must be finite")
    for index, gap in enumerate(gaps):
        for field in ("gap", "lower", "upper"):
            number = getattr(gap, field)
            if number is not None and not math.isfinite(number):
                raise ValueError(f"gaps[{index}] {gap.metric!r}: {field} must be finite")


def sync_catalog(
    connection: Connection,
    models_: Sequence[CatalogModel],
    suites_: Sequence[CatalogSuite],
    *,
    at: datetime,
) -> None:
    """Insert or update models and suites by name; rows not given are left alone."""
    model_rows = [
        {
            "name": model.name,
            "adapter": model.adapter,
            "url": model.url,
            "role": model.role,
            "config_hash": model.config_hash,
            "updated_at": at,
        }
        for model in models_
    ]
    suite_rows = [
        {
            "name": suite.name,
            "dataset": suite.dataset,
            "task": suite.task,
            "config_hash": suite.config_hash,
            "updated_at": at,
        }
        for suite in suites_
    ]
    for table, rows in ((models, model_rows), (suites, suite_rows)):
        if rows:
            connection.execute(_upsert_by_name(connection, table), rows)


def create_run(
    connection: Connection,
    *,
    suite: str,
    model: str,
    trigger: str,
    dataset_sha256: str,
    config_hash: str,
    at: datetime,
    status: RunStatus = RunStatus.RUNNING,
    request_id: str | None = None,
    heartbeat_at: datetime | None = None,
    tier: str = "",
    n_planned: int | None = None,
    model_version: str | None = None,
) -> int:
    """Insert a run created at ``at``, either ``running`` (started at ``at``) or
    ``queued`` (not started), its heartbeat ``heartbeat_at`` (default ``at``), of the
    suite's ``tier`` (empty: as configured); return its id."""
    status = RunStatus(status)
    if status not in _UNFINISHED:
        raise ValueError(f"a new run is queued or running, got: {status}")
    result = connection.execute(
        insert(runs).values(
            suite=suite,
            model=model,
            status=status.value,
            trigger=trigger,
            created_at=at,
            started_at=at if status is RunStatus.RUNNING else None,
            dataset_sha256=dataset_sha256,
            config_hash=config_hash,
            n_cases=0,
            n_errors=0,
            request_id=request_id,
            heartbeat_at=heartbeat_at or at,
            tier=tier,
            n_planned=n_planned,
            model_version=model_version,
        )
    )
    run_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if not isinstance(run_id, int):
        raise StoreError(f"inserting a run for {suite!r} x {model!r} returned no id")
    rollups.note_created(connection, suite, model, at=at)
    return run_id


def start_run(
    connection: Connection,
    run_id: int,
    *,
    dataset_sha256: str,
    config_hash: str,
    at: datetime,
    n_planned: int | None = None,
    model_version: str | None = None,
) -> None:
    """Move a ``queued`` run to ``running``, started at ``at``, with the fingerprint of
    the dataset it reads, the number of cases it will score and the model version its
    registry alias named. ``StoreError`` if the run
    does not exist or is not queued (a run interrupted while it waited is never started)."""
    updated = connection.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == RunStatus.QUEUED.value)
        .values(
            status=RunStatus.RUNNING.value,
            started_at=at,
            heartbeat_at=at,
            dataset_sha256=dataset_sha256,
            config_hash=config_hash,
            n_planned=n_planned,
            model_version=model_version,
        )
    )
    if updated.rowcount != 1:
        current = connection.scalar(select(runs.c.status).where(runs.c.id == run_id))
        if current is None:
            raise StoreError(f"run {run_id} does not exist")
        raise StoreError(f"run {run_id} is {current}, not queued; it cannot be started")


def append_cases(
    connection: Connection, run_id: int, cases: Sequence[CaseResult], *, replay: bool = False
) -> None:
    """Insert a batch of a running run's case results with one multi-row statement.

    The run's row is read first (and locked on PostgreSQL), so a batch never lands in a run
    that has already finished; a case id stored twice violates the primary key. With
    ``replay`` (the batch is sent again after a lost connection, which may have committed
    it), cases already stored are skipped instead.
    """
    _require_running(connection, run_id, "take more cases")
    if not cases:
        return
    statement: Insert = insert(case_results)
    if replay:
        upsert = dialect_insert(connection)(case_results)
        statement = upsert.on_conflict_do_nothing(index_elements=["run_id", "case_id"])
    connection.execute(statement, _case_rows(run_id, cases))


def finish_run(
    connection: Connection,
    run_id: int,
    *,
    status: RunStatus,
    at: datetime,
    error: str | None,
    cases: Sequence[CaseResult],
    metrics: Sequence[MetricValue],
    slices: Sequence[SliceMetric] = (),
    operations: RunOperations | None = None,
    judges: Sequence[JudgeUsage] = (),
    fairness: Sequence[FairnessValue] = (),
    gaps: Sequence[SliceGap] = (),
) -> None:
    """Mark a running run final and store its last cases, aggregates (metrics, slices,
    slice gaps, fairness measures), operations and judge usage.

    The conditional UPDATE comes first: it locks the run's row on PostgreSQL, so of two
    concurrent finishers exactly one sees ``running``; the other gets a ``StoreError``.
    ``n_cases`` and ``n_errors`` count every case stored for the run, including batches
    appended earlier.
    """
    updated = connection.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
        .values(
            status=RunStatus(status).value,
            finished_at=at,
            error=error,
            **_operation_values(operations),
        )
    )
    if updated.rowcount != 1:
        _require_running(connection, run_id, "be finished again")
    if cases:
        connection.execute(insert(case_results), _case_rows(run_id, cases))
    if metrics:
        connection.execute(insert(run_metrics), _metric_rows(run_id, metrics))
    if slices:
        connection.execute(insert(run_slices), _slice_rows(run_id, slices))
    if judges:
        connection.execute(insert(run_judges), _judge_rows(run_id, judges))
    if fairness:
        connection.execute(insert(run_fairness), _fairness_rows(run_id, fairness))
    if gaps:
        connection.execute(insert(run_slice_gaps), _gap_rows(run_id, gaps))
    counted = select(func.count(), func.count(case_results.c.error_kind)).where(
        case_results.c.run_id == run_id
    )
    n_cases, n_errors = connection.execute(counted).one()
    connection.execute(
        update(runs).where(runs.c.id == run_id).values(n_cases=n_cases, n_errors=n_errors)
    )
    rollups.note_finished(connection, [run_id])


def _require_running(connection: Connection, run_id: int, action: str) -> None:
    query = select(runs.c.status).where(runs.c.id == run_id)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    current = connection.scalar(query)
    if current is None:
        raise StoreError(f"run {run_id} does not exist")
    if current != RunStatus.RUNNING.value:
        raise StoreError(f"run {run_id} is {current}, not running; it cannot {action}")


def _operation_values(operations: RunOperations | None) -> dict[str, Any]:
    if operations is None:
        return {}
    return {
        name: getattr(operations, name)
        for name in (
            "latency_p50",
            "latency_p90",
            "latency_p95",
            "latency_p99",
            "throughput",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "currency",
        )
    }


def interrupt_running(
    connection: Connection,
    *,
    reason: str,
    at: datetime,
    run_ids: Sequence[int] | None = None,
) -> list[int]:
    """Mark every ``queued`` or ``running`` run (of ``run_ids``, if given) ``interrupted``
    at ``at``; return their ids, ascending. Finished runs are left alone."""
    query = update(runs).where(runs.c.status.in_([s.value for s in _UNFINISHED]))
    if run_ids is not None:
        query = query.where(runs.c.id.in_(run_ids))
    result = connection.execute(
        query.values(status=RunStatus.INTERRUPTED.value, finished_at=at, error=reason).returning(
            runs.c.id
        )
    )
    interrupted = sorted(result.scalars())
    rollups.note_finished(connection, interrupted)
    return interrupted


def touch_runs(connection: Connection, run_ids: Sequence[int], *, at: datetime) -> list[int]:
    """Set the heartbeat of those runs that are still queued or running to ``at``; return
    their ids, ascending (a run missing from the answer was finished, maybe by a sweep)."""
    if not run_ids:
        return []
    result = connection.execute(
        update(runs)
        .where(runs.c.id.in_(run_ids), runs.c.status.in_([s.value for s in _UNFINISHED]))
        .values(heartbeat_at=at)
        .returning(runs.c.id)
    )
    return sorted(result.scalars())


def interrupt_stale(
    connection: Connection, *, before: datetime, reason: str, at: datetime
) -> list[int]:
    """Mark every queued or running run whose heartbeat is older than ``before``
    ``interrupted`` at ``at``; return their ids, ascending.

    One conditional UPDATE: an owner that refreshes the heartbeat at the same moment
    either lands first (and the run is kept) or finds the run finished, never both.
    A run without a heartbeat (written by a version before revision 0009) counts from its
    start, or its creation.
    """
    beat = func.coalesce(runs.c.heartbeat_at, runs.c.started_at, runs.c.created_at)
    result = connection.execute(
        update(runs)
        .where(runs.c.status.in_([s.value for s in _UNFINISHED]), beat < before)
        .values(status=RunStatus.INTERRUPTED.value, finished_at=at, error=reason)
        .returning(runs.c.id)
    )
    interrupted = sorted(result.scalars())
    rollups.note_finished(connection, interrupted)
    return interrupted


def _upsert_by_name(connection: Connection, table: Table) -> Insert:
    statement = dialect_insert(connection)(table)
    changes = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name not in ("id", "name")
    }
    upsert: Insert = statement.on_conflict_do_update(index_elements=["name"], set_=changes)
    return upsert


def _case_rows(run_id: int, cases: Iterable[CaseResult]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "case_id": case.case_id,
            "input": case.input,
            "expected": case.expected,
            "prediction": case.prediction,
            "scores": dict(case.scores),
            "latency_seconds": case.latency_seconds,
            "error_kind": case.error_kind,
            "error": case.error,
            "metadata": dict(case.metadata) or None,
            "prompt_tokens": case.prompt_tokens,
            "completion_tokens": case.completion_tokens,
            "attempts": case.attempts,
            "model_scores": case.model_scores,
        }
        for case in cases
    ]


def _metric_rows(run_id: int, metrics: Iterable[MetricValue]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "name": metric.name,
            "value": metric.value,
            "lower": metric.lower,
            "upper": metric.upper,
            "n": metric.n,
            "detail": metric.detail,
        }
        for metric in metrics
    ]


def keep_judge_answer(
    connection: Connection, key: str, judge: str, answer: Any, logprobs: Any, at: datetime
) -> None:
    """Keep a judge answer under ``key``; one already kept there stays."""
    statement = dialect_insert(connection)(judge_answers).values(
        key=key, judge=judge, answer=answer, logprobs=logprobs, created_at=at
    )
    connection.execute(statement.on_conflict_do_nothing(index_elements=["key"]))


def _judge_rows(run_id: int, judges: Iterable[JudgeUsage]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "metric": item.metric,
            "judge": item.judge,
            "prompt_sha256": item.prompt_sha256,
            "requests": item.requests,
            "errors": item.errors,
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "cost": item.cost,
            "currency": item.currency,
            "first_error": item.first_error,
            "agreement": item.agreement,
            "cached": item.cached,
        }
        for item in judges
    ]


def _fairness_rows(run_id: int, fairness: Iterable[FairnessValue]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "measure": item.measure,
            "groups": item.groups[:NAME],
            "value": item.value,
            "lower": item.lower,
            "upper": item.upper,
            "n": item.n,
        }
        for item in fairness
    ]


def _gap_rows(run_id: int, gaps: Iterable[SliceGap]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "field": item.field,
            "metric": item.metric,
            "gap": item.gap,
            "best": item.best[:NAME],
            "worst": item.worst[:NAME],
            "lower": item.lower,
            "upper": item.upper,
        }
        for item in gaps
    ]


def _slice_rows(run_id: int, slices: Iterable[SliceMetric]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "field": item.field,
            "value": item.value[:NAME],
            "metric": item.metric,
            "score": item.score,
            "lower": item.lower,
            "upper": item.upper,
            "n": item.n,
        }
        for item in slices
    ]
