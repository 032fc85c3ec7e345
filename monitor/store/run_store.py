"""The ``store.runs`` part of the store: runs, their case results, the catalog of models
and suites, API run requests and the judge answer cache (``writes``, ``reads`` and
``requests`` have the SQL).

:class:`RunStore` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.records import (
    CaseResult,
    CatalogModel,
    CatalogSuite,
    FairnessValue,
    JudgeUsage,
    LatestScore,
    MetricValue,
    Run,
    RunOperations,
    RunRequest,
    RunStatus,
    RunSummary,
    SliceGap,
    SliceMetric,
)
from monitor.store import reads, requests, writes
from monitor.store.requests import QueuedRun
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["RunStore"]


class RunStore:
    """Runs, their case results, the catalog, API run requests and the judge answer cache."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def sync_catalog(
        self,
        models: Sequence[CatalogModel],
        suites: Sequence[CatalogSuite],
        *,
        at: datetime,
    ) -> None:
        """Upsert the configured models and suites by name; others are left alone."""
        at = ensure_utc(at, name="at")
        writes.check_catalog(models, suites)
        with self._store._writing("syncing the catalog") as connection:
            writes.sync_catalog(connection, models, suites, at=at)

    def create_run(
        self,
        *,
        suite: str,
        model: str,
        trigger: str,
        dataset_sha256: str,
        config_hash: str,
        at: datetime,
        status: RunStatus = RunStatus.RUNNING,
        heartbeat_at: datetime | None = None,
        tier: str = "",
        n_planned: int | None = None,
        model_version: str | None = None,
    ) -> int:
        """Record a new run of ``suite`` against ``model``, ``running`` from ``at`` or
        ``queued`` (started later with ``start_run``); return its id. Its heartbeat is
        ``heartbeat_at`` (by default ``at``): a run created late, for a slot missed, is
        alive now. ``tier`` names the suite's tier it runs (empty: as configured);
        ``n_planned`` the cases a running run will score; ``model_version`` the version
        the model's registry alias named (``None``: no registry)."""
        at = ensure_utc(at, name="at")
        beat = ensure_utc(heartbeat_at, name="heartbeat_at") if heartbeat_at else at
        with self._store._writing(f"creating a run of {suite!r} x {model!r}") as connection:
            return writes.create_run(
                connection,
                suite=suite,
                model=model,
                trigger=trigger,
                dataset_sha256=dataset_sha256,
                config_hash=config_hash,
                at=at,
                status=status,
                heartbeat_at=beat,
                tier=tier,
                n_planned=n_planned,
                model_version=model_version,
            )

    def start_run(
        self,
        run_id: int,
        *,
        dataset_sha256: str,
        config_hash: str,
        at: datetime,
        n_planned: int | None = None,
        model_version: str | None = None,
    ) -> None:
        """Move a ``queued`` run to ``running`` (``n_planned``: the cases it will score;
        ``model_version``: the version its model's registry alias named);
        ``StoreError`` if it is not queued."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"starting run {run_id}") as connection:
            writes.start_run(
                connection,
                run_id,
                dataset_sha256=dataset_sha256,
                config_hash=config_hash,
                at=at,
                n_planned=n_planned,
                model_version=model_version,
            )

    def create_run_request(
        self,
        *,
        request_id: str,
        suite: str,
        models: Sequence[dict[str, Any]],
        sample: int | None,
        baseline: str | None,
        requested_by: str,
        at: datetime,
        runs: Sequence[QueuedRun],
        tier: str = "",
    ) -> list[int]:
        """Store an API request and its ``queued`` runs (of the suite's ``tier``), all or
        nothing; return the run ids in the order of ``runs``. ``ValueError`` for a numeric
        id, no runs, too many runs or a model asked for twice."""
        at = ensure_utc(at, name="at")
        requests.check_request(request_id, runs)
        with self._store._writing(f"storing run request {request_id!r}") as connection:
            return requests.create_request(
                connection,
                request_id=request_id,
                suite=suite,
                models=models,
                sample=sample,
                baseline=baseline,
                requested_by=requested_by,
                at=at,
                runs=runs,
                tier=tier,
            )

    def append_cases(
        self, run_id: int, cases: Sequence[CaseResult], *, replay: bool = False
    ) -> None:
        """Store a batch of a running run's case results in one transaction.

        The runner calls this as results arrive (every few hundred cases or second), so
        a long run never holds every result in memory and a crashed run keeps the cases
        it had. Raises ``StoreError`` if the run is not running or a case id is already
        stored for it; then nothing of the batch is stored. With ``replay`` (the same
        batch again, after ``StoreUnavailable`` left unknown whether it was committed)
        cases already stored are skipped rather than refused.
        """
        with self._store._writing(f"storing {len(cases)} cases of run {run_id}") as connection:
            writes.append_cases(connection, run_id, cases, replay=replay)

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        at: datetime,
        error: str | None = None,
        cases: Sequence[CaseResult] = (),
        metrics: Sequence[MetricValue] = (),
        slices: Sequence[SliceMetric] = (),
        operations: RunOperations | None = None,
        judges: Sequence[JudgeUsage] = (),
        fairness: Sequence[FairnessValue] = (),
        gaps: Sequence[SliceGap] = (),
    ) -> None:
        """Store a running run's last cases, aggregates (with the slice ``gaps`` and
        their intervals), judge usage and final
        ``status``, all or nothing. ``n_cases`` and ``n_errors`` count every stored case of the run.

        Raises ``StoreError`` if the run does not exist, is no longer running, or the
        results cannot be stored (e.g. two cases share a ``case_id``); then nothing
        changed. Raises ``ValueError`` for a non-final status or a non-finite metric.
        """
        at = ensure_utc(at, name="at")
        writes.check_finish(status, metrics, slices, fairness, gaps)
        with self._store._writing(f"finishing run {run_id}") as connection:
            writes.finish_run(
                connection,
                run_id,
                status=status,
                at=at,
                error=error,
                cases=cases,
                metrics=metrics,
                slices=slices,
                operations=operations,
                judges=judges,
                fairness=fairness,
                gaps=gaps,
            )

    def judge_answer(self, key: str) -> tuple[Any, Any] | None:
        """The kept judge answer and its logprobs under ``key``, or ``None``."""
        with self._store._reading("reading a kept judge answer") as connection:
            return reads.judge_answer(connection, key)

    def keep_judge_answer(
        self, key: str, *, judge: str, answer: Any, logprobs: Any, at: datetime
    ) -> None:
        """Keep a judge answer under ``key``; an answer already kept stays."""
        at = ensure_utc(at, name="at")
        with self._store._writing("keeping a judge answer") as connection:
            writes.keep_judge_answer(connection, key, judge, answer, logprobs, at)

    def interrupt_running(
        self, *, reason: str, at: datetime, run_ids: Sequence[int] | None = None
    ) -> list[int]:
        """Mark every queued or running run (of ``run_ids``, if given) ``interrupted``
        with ``reason``; return their ids.

        Called at daemon start: a run still queued or running then was orphaned by a
        crash. With ``run_ids``, for runs cancelled before they started.
        """
        at = ensure_utc(at, name="at")
        with self._store._writing("interrupting running runs") as connection:
            return writes.interrupt_running(connection, reason=reason, at=at, run_ids=run_ids)

    def touch_runs(self, run_ids: Sequence[int], *, at: datetime) -> list[int]:
        """Refresh the heartbeat of the owner's queued or running runs; return the ids
        still unfinished."""
        at = ensure_utc(at, name="at")
        with self._store._writing(
            f"refreshing the heartbeat of {len(run_ids)} run(s)"
        ) as connection:
            return writes.touch_runs(connection, run_ids, at=at)

    def interrupt_stale(self, *, before: datetime, reason: str, at: datetime) -> list[int]:
        """Mark every queued or running run whose heartbeat is older than ``before``
        ``interrupted`` with ``reason``; return their ids. Safe with several replicas: a
        run whose owner is alive keeps a fresh heartbeat."""
        before, at = ensure_utc(before, name="before"), ensure_utc(at, name="at")
        with self._store._writing("interrupting abandoned runs") as connection:
            return writes.interrupt_stale(connection, before=before, reason=reason, at=at)

    def get_run(self, run_id: int) -> Run | None:
        """The run with ``run_id`` and its metrics sorted by name, or ``None``."""
        if not 0 < run_id < 2**31:
            return None  # ids are 32-bit; PostgreSQL would refuse to compare with this
        with self._store._reading(f"reading run {run_id}") as connection:
            return reads.get_run(connection, run_id)

    def list_runs(
        self,
        *,
        suite: str | None = None,
        model: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Run]:
        """Runs newest first (id descending); pass the last id seen as ``before_id``
        to get the next page."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got: {limit}")
        with self._store._reading("listing runs") as connection:
            return reads.list_runs(
                connection,
                suite=suite,
                model=model,
                status=status,
                limit=limit,
                before_id=before_id,
            )

    def get_run_request(self, request_id: str) -> RunRequest | None:
        """The API request ``request_id`` with its runs, or ``None``."""
        with self._store._reading(f"reading run request {request_id!r}") as connection:
            return requests.get_request(connection, request_id)

    def list_cases(
        self, run_id: int, *, limit: int | None = 100, offset: int = 0
    ) -> list[CaseResult]:
        """A page of a run's case results ordered by ``case_id`` (all of them when
        ``limit`` is None)."""
        if (limit is not None and limit < 1) or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got: {limit}, {offset}")
        with self._store._reading(f"listing cases of run {run_id}") as connection:
            return reads.list_cases(connection, run_id, limit=limit, offset=offset)

    def count_cases(self, run_id: int) -> tuple[int, int]:
        """How many cases of the run are stored, and how many of them failed."""
        with self._store._reading(f"counting cases of run {run_id}") as connection:
            return reads.count_cases(connection, run_id)

    def latest_scores(self, *, suite: str | None = None) -> list[LatestScore]:
        """Metrics of the latest succeeded run of every suite x model (of one suite)."""
        with self._store._reading("reading latest scores") as connection:
            return reads.latest_scores(connection, suite=suite)

    def latest_fairness(self) -> list[tuple[str, str, FairnessValue]]:
        """(suite, model, fairness measure) of the latest succeeded run of every suite x
        model whose suite has ``fairness``."""
        with self._store._reading("reading latest fairness measures") as connection:
            return reads.latest_fairness(connection)

    def run_summaries(self) -> list[RunSummary]:
        """Run counts and last run times of every suite x model."""
        with self._store._reading("summarising runs") as connection:
            return reads.run_summaries(connection)
