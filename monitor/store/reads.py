"""Queries that turn stored rows into the records of ``monitor.records``.

Each function takes an open connection, so the caller decides the transaction: the store
runs several of them under one snapshot. Every query here is bounded by an index or a
``LIMIT``, and the per-pair views (latest scores, summaries) are computed with grouped
queries, never one query per suite x model, because the metrics exporter calls them on
every scrape.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, func, select

from monitor.records import (
    CaseResult,
    FairnessValue,
    JudgeUsage,
    LatestScore,
    MetricValue,
    Run,
    RunOperations,
    RunStatus,
    RunSummary,
    SliceGap,
    SliceMetric,
)
from monitor.store import rollups
from monitor.store.tables import (
    case_results,
    judge_answers,
    run_fairness,
    run_judges,
    run_metrics,
    run_rollups,
    run_slice_gaps,
    run_slices,
    runs,
)

__all__ = [
    "count_cases",
    "get_run",
    "judge_answer",
    "latest_fairness",
    "latest_scores",
    "list_cases",
    "list_runs",
    "run_summaries",
]

_FINAL = [s.value for s in RunStatus if s not in (RunStatus.QUEUED, RunStatus.RUNNING)]


def get_run(connection: Connection, run_id: int) -> Run | None:
    """The run with ``run_id`` and its metrics, or ``None`` if there is no such run."""
    row = connection.execute(select(runs).where(runs.c.id == run_id)).one_or_none()
    if row is None:
        return None
    return replace(
        _to_run(row, _metrics_by_run(connection, [run_id]).get(run_id, ())),
        slices=_slices(connection, run_id),
        judges=_judges(connection, run_id),
        fairness=_fairness(connection, run_id),
        gaps=_gaps(connection, run_id),
    )


def list_runs(
    connection: Connection,
    *,
    suite: str | None = None,
    model: str | None = None,
    status: RunStatus | None = None,
    limit: int = 50,
    before_id: int | None = None,
    request_id: str | None = None,
) -> list[Run]:
    """Runs newest first, optionally filtered; page on with ``before_id`` = last id seen.

    Keyset pagination (``id < before_id``) stays correct while new runs are inserted,
    which an offset would not.
    """
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if suite is not None:
        query = query.where(runs.c.suite == suite)
    if model is not None:
        query = query.where(runs.c.model == model)
    if status is not None:
        query = query.where(runs.c.status == RunStatus(status).value)
    if before_id is not None:
        query = query.where(runs.c.id < before_id)
    if request_id is not None:
        query = query.where(runs.c.request_id == request_id)
    rows = connection.execute(query).all()
    metrics = _metrics_by_run(connection, [row.id for row in rows])
    return [_to_run(row, metrics.get(row.id, ())) for row in rows]


def list_cases(
    connection: Connection, run_id: int, *, limit: int | None = 100, offset: int = 0
) -> list[CaseResult]:
    """A page of a run's case results, ordered by ``case_id`` (every case when ``limit``
    is None)."""
    query = (
        select(case_results)
        .where(case_results.c.run_id == run_id)
        .order_by(case_results.c.case_id)
        .limit(limit)
        .offset(offset)
    )
    return [
        CaseResult(
            case_id=row.case_id,
            input=row.input,
            expected=row.expected,
            prediction=row.prediction,
            scores=dict(row.scores),
            latency_seconds=row.latency_seconds,
            error_kind=row.error_kind,
            error=row.error,
            metadata=dict(row.metadata or {}),
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            attempts=row.attempts,
            model_scores=row.model_scores,
        )
        for row in connection.execute(query)
    ]


def count_cases(connection: Connection, run_id: int) -> tuple[int, int]:
    """How many cases of a run are stored, and how many of them failed."""
    query = select(func.count(), func.count(case_results.c.error_kind)).where(
        case_results.c.run_id == run_id
    )
    total, errors = connection.execute(query).one()
    return int(total), int(errors)


def judge_answer(connection: Connection, key: str) -> tuple[Any, Any] | None:
    """The kept judge answer and its logprobs under ``key``, or ``None``."""
    query = select(judge_answers.c.answer, judge_answers.c.logprobs).where(
        judge_answers.c.key == key
    )
    row = connection.execute(query).one_or_none()
    return None if row is None else (row.answer, row.logprobs)


def _judges(connection: Connection, run_id: int) -> tuple[JudgeUsage, ...]:
    query = select(run_judges).where(run_judges.c.run_id == run_id).order_by(run_judges.c.metric)
    return tuple(
        JudgeUsage(
            metric=row.metric,
            judge=row.judge,
            prompt_sha256=row.prompt_sha256,
            requests=row.requests,
            errors=row.errors,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost=row.cost,
            currency=row.currency,
            first_error=row.first_error,
            agreement=row.agreement,
            cached=row.cached,
        )
        for row in connection.execute(query)
    )


def _fairness(connection: Connection, run_id: int) -> tuple[FairnessValue, ...]:
    query = (
        select(run_fairness).where(run_fairness.c.run_id == run_id).order_by(run_fairness.c.measure)
    )
    return tuple(
        FairnessValue(row.groups, row.measure, row.value, row.lower, row.upper, row.n)
        for row in connection.execute(query)
    )


def _gaps(connection: Connection, run_id: int) -> tuple[SliceGap, ...]:
    query = (
        select(run_slice_gaps)
        .where(run_slice_gaps.c.run_id == run_id)
        .order_by(run_slice_gaps.c.field, run_slice_gaps.c.metric)
    )
    return tuple(
        SliceGap(row.field, row.metric, row.gap, row.best, row.worst, row.lower, row.upper)
        for row in connection.execute(query)
    )


def _slices(connection: Connection, run_id: int) -> tuple[SliceMetric, ...]:
    query = (
        select(run_slices)
        .where(run_slices.c.run_id == run_id)
        .order_by(run_slices.c.field, run_slices.c.value, run_slices.c.metric)
    )
    return tuple(
        SliceMetric(
            field=row.field,
            value=row.value,
            metric=row.metric,
            score=row.score,
            lower=row.lower,
            upper=row.upper,
            n=row.n,
        )
        for row in connection.execute(query)
    )


def latest_scores(connection: Connection, *, suite: str | None = None) -> list[LatestScore]:
    """Every metric of the latest succeeded run (highest id) of each suite x model, of
    one ``suite`` if given, found through the pairs' rollup rows.

    Pairs whose runs all failed or were interrupted are absent: a failed run has no
    scores, and hiding the last good ones would make a dashboard read "no data".
    """
    # From the rollup rows, in their key order: SQLite would otherwise walk every run
    # by the (suite, model) index to produce the ORDER BY.
    query = (
        select(run_rollups.c.suite, run_rollups.c.model, runs.c.finished_at, run_metrics)
        .select_from(run_rollups)
        .join(runs, runs.c.id == run_rollups.c.success_run_id)
        .join(run_metrics, run_metrics.c.run_id == runs.c.id)
        .order_by(run_rollups.c.suite, run_rollups.c.model, run_metrics.c.name)
    )
    if suite is not None:
        query = query.where(run_rollups.c.suite == suite)
    return [latest_score(row) for row in connection.execute(query)]


def latest_fairness(connection: Connection) -> list[tuple[str, str, FairnessValue]]:
    """(suite, model, measure) of the latest succeeded run of each suite x model, found
    through the pairs' rollup rows as ``latest_scores`` finds its metrics."""
    query = (
        select(run_rollups.c.suite, run_rollups.c.model, run_fairness)
        .select_from(run_rollups)
        .join(run_fairness, run_fairness.c.run_id == run_rollups.c.success_run_id)
        .order_by(run_rollups.c.suite, run_rollups.c.model, run_fairness.c.measure)
    )
    return [
        (
            row.suite,
            row.model,
            FairnessValue(row.groups, row.measure, row.value, row.lower, row.upper, row.n),
        )
        for row in connection.execute(query)
    ]


def latest_score(row: Row[Any]) -> LatestScore:
    """A score from a row of ``run_metrics`` joined with its run's suite, model and
    ``finished_at`` (the suite and model may be a baseline's)."""
    return LatestScore(
        suite=row.suite,
        model=row.model,
        metric=row.name,
        value=row.value,
        lower=row.lower,
        upper=row.upper,
        run_id=row.run_id,
        finished_at=row.finished_at,
    )


def run_summaries(connection: Connection) -> list[RunSummary]:
    """Per suite x model: run counts by status, when runs last finished and succeeded,
    the cases, tokens and cost of the finished runs (the judges' apart from the model's),
    and the latest finished run's; read from the rollup rows the writes keep
    (``monitor.store.rollups``), so the cost does not grow with the history and the
    totals still count runs that retention deleted."""
    return rollups.summaries(connection)


def _metrics_by_run(
    connection: Connection, run_ids: Sequence[int]
) -> dict[int, tuple[MetricValue, ...]]:
    if not run_ids:
        return {}
    query = (
        select(run_metrics)
        .where(run_metrics.c.run_id.in_(run_ids))
        .order_by(run_metrics.c.run_id, run_metrics.c.name)
    )
    grouped: dict[int, list[MetricValue]] = defaultdict(list)
    for row in connection.execute(query):
        grouped[row.run_id].append(
            MetricValue(
                name=row.name,
                value=row.value,
                lower=row.lower,
                upper=row.upper,
                n=row.n,
                detail=row.detail,
            )
        )
    return {run_id: tuple(values) for run_id, values in grouped.items()}


def _to_run(row: Row[tuple[object, ...]], metrics: Iterable[MetricValue]) -> Run:
    return Run(
        id=row.id,
        suite=row.suite,
        model=row.model,
        status=RunStatus(row.status),
        trigger=row.trigger,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        dataset_sha256=row.dataset_sha256,
        config_hash=row.config_hash,
        n_cases=row.n_cases,
        n_errors=row.n_errors,
        error=row.error,
        metrics=tuple(metrics),
        operations=_operations(row),
        request_id=row.request_id,
        tier=row.tier,
        n_planned=row.n_planned,
        model_version=row.model_version,
    )


def _operations(row: Row[tuple[object, ...]]) -> RunOperations | None:
    if row.status not in _FINAL or row.n_cases == 0:
        return None
    return RunOperations(
        latency_p50=row.latency_p50,
        latency_p90=row.latency_p90,
        latency_p95=row.latency_p95,
        latency_p99=row.latency_p99,
        error_rate=row.n_errors / row.n_cases,
        throughput=row.throughput,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost=row.cost,
        currency=row.currency,
    )
