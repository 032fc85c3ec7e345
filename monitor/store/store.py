"""The store: the daemon's single source of truth for runs and their results.

:class:`Store` is a synchronous facade over one SQLAlchemy engine. The daemon calls it
from worker threads; the engine's pool hands each call its own connection, so one
``Store`` may be shared by every thread. Each method is one transaction: reads run in
a plain transaction, writes in a write transaction (``BEGIN IMMEDIATE`` on SQLite, see
``engine.py``), so a method either takes effect whole or not at all.

Database failures surface as ``StoreError`` naming the operation and the driver's error,
never the database password; a lost or refused connection (or a locked SQLite file) as
its subclass ``StoreUnavailable``, which is worth retrying. Invalid arguments raise
``ValueError`` before any SQL runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
    SQLAlchemyError,
)

from monitor.alerts.engine import AlertState, Phase, Transition
from monitor.alerts.records import HistoryEntry, OutboxMessage, OutboxStats, OutboxStatus, Silence
from monitor.errors import StoreBusy, StoreError, StoreUnavailable
from monitor.records import (
    AuditEntry,
    Baseline,
    CaseChange,
    CaseResult,
    CatalogModel,
    CatalogSuite,
    DriftReport,
    FairnessValue,
    JudgeUsage,
    LatestScore,
    MetricComparison,
    MetricValue,
    NewDriftReport,
    Review,
    Run,
    RunOperations,
    RunRequest,
    RunStatus,
    RunSummary,
    SliceMetric,
    StoredProfile,
    StreamBatch,
    StreamCount,
    StreamExtent,
    Verdict,
    WindowPerformance,
)
from monitor.store import (
    alerts,
    audit,
    drift,
    ingest,
    migrate,
    performance,
    reads,
    requests,
    retention,
    rollups,
    verdicts,
    writes,
)
from monitor.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_store_engine,
    describe_error,
    redact_url,
    write_engine,
    write_generation,
)
from monitor.store.queue import RunQueue
from monitor.store.requests import QueuedRun
from monitor.store.types import ensure_utc

__all__ = ["ExpiringKind", "Store"]


class Store:
    """Runs, their case results and metrics, and the catalog of models and suites.

    ``Store(url)`` builds its own engine (see ``create_store_engine``; ``busy_timeout_ms``
    applies to SQLite only); ``Store.from_engine(engine)`` adopts one made by
    ``create_store_engine``. Call
    ``upgrade()`` once before use (or check ``check_ready()``) and ``close()`` at exit.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self._attach(create_store_engine(url, busy_timeout_ms=busy_timeout_ms))

    @classmethod
    def from_engine(cls, engine: Engine) -> Store:
        """Wrap an existing engine. It must come from ``create_store_engine``: the
        SQLite transaction hooks the store relies on are installed there."""
        store = cls.__new__(cls)
        store._attach(engine)
        return store

    def _attach(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self._writes = write_generation(engine)

    @property
    def write_generation(self) -> int:
        """A number that changes whenever this process commits a write to the store."""
        return self._writes.value

    @property
    def queue(self) -> RunQueue:
        """The work queue: queued runs, their leases and the replicas holding them."""
        return RunQueue(self)

    @property
    def engine(self) -> Engine:
        """The underlying engine, for the few callers that need SQL of their own."""
        return self._engine

    def __repr__(self) -> str:
        return f"Store({redact_url(self._engine.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection. The store may be used again afterwards."""
        self._engine.dispose()

    # -- schema -----------------------------------------------------------------------

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision; a no-op when already there."""
        try:
            migrate.upgrade(self._engine)
        except SQLAlchemyError as exc:
            raise self._error("upgrading the schema", exc) from exc

    def current_revision(self) -> str | None:
        """The schema revision of the database, ``None`` if it was never migrated."""
        with self._reading("reading the schema revision") as connection:
            return migrate.current_revision(connection)

    def head_revision(self) -> str:
        """The newest schema revision this version of the code knows."""
        return migrate.head_revision()

    def check_ready(self) -> str | None:
        """``None`` if the store is reachable and migrated to head, else why not.

        Meant for readiness probes and ``monitor db status``: it never raises for a
        database problem, it explains it.
        """
        try:
            with self._engine.connect() as connection:
                current = migrate.current_revision(connection)
        except SQLAlchemyError as exc:
            return f"store unreachable: {describe_error(exc, self._engine.url)}"
        head = self.head_revision()
        if current != head:
            return (
                f"migrations not at head (current {current or 'none'}, head {head}); "
                "run 'monitor db upgrade'"
            )
        return None

    # -- writes -----------------------------------------------------------------------

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
        with self._writing("syncing the catalog") as connection:
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
    ) -> int:
        """Record a new run of ``suite`` against ``model``, ``running`` from ``at`` or
        ``queued`` (started later with ``start_run``); return its id. Its heartbeat is
        ``heartbeat_at`` (by default ``at``): a run created late, for a slot missed, is
        alive now. ``tier`` names the suite's tier it runs (empty: as configured)."""
        at = ensure_utc(at, name="at")
        beat = ensure_utc(heartbeat_at, name="heartbeat_at") if heartbeat_at else at
        with self._writing(f"creating a run of {suite!r} x {model!r}") as connection:
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
            )

    def start_run(
        self, run_id: int, *, dataset_sha256: str, config_hash: str, at: datetime
    ) -> None:
        """Move a ``queued`` run to ``running``; ``StoreError`` if it is not queued."""
        at = ensure_utc(at, name="at")
        with self._writing(f"starting run {run_id}") as connection:
            writes.start_run(
                connection, run_id, dataset_sha256=dataset_sha256, config_hash=config_hash, at=at
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
        with self._writing(f"storing run request {request_id!r}") as connection:
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
        with self._writing(f"storing {len(cases)} cases of run {run_id}") as connection:
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
    ) -> None:
        """Store a running run's last cases, aggregates (with its fairness measures),
        judge usage and final
        ``status``, all or nothing. ``n_cases`` and ``n_errors`` count every stored case of the run.

        Raises ``StoreError`` if the run does not exist, is no longer running, or the
        results cannot be stored (e.g. two cases share a ``case_id``); then nothing
        changed. Raises ``ValueError`` for a non-final status or a non-finite metric.
        """
        at = ensure_utc(at, name="at")
        writes.check_finish(status, metrics, slices, fairness)
        with self._writing(f"finishing run {run_id}") as connection:
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
            )

    def judge_answer(self, key: str) -> tuple[Any, Any] | None:
        """The kept judge answer and its logprobs under ``key``, or ``None``."""
        with self._reading("reading a kept judge answer") as connection:
            return reads.judge_answer(connection, key)

    def keep_judge_answer(
        self, key: str, *, judge: str, answer: Any, logprobs: Any, at: datetime
    ) -> None:
        """Keep a judge answer under ``key``; an answer already kept stays."""
        at = ensure_utc(at, name="at")
        with self._writing("keeping a judge answer") as connection:
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
        with self._writing("interrupting running runs") as connection:
            return writes.interrupt_running(connection, reason=reason, at=at, run_ids=run_ids)

    def touch_runs(self, run_ids: Sequence[int], *, at: datetime) -> list[int]:
        """Refresh the heartbeat of the owner's queued or running runs; return the ids
        still unfinished."""
        at = ensure_utc(at, name="at")
        with self._writing(f"refreshing the heartbeat of {len(run_ids)} run(s)") as connection:
            return writes.touch_runs(connection, run_ids, at=at)

    def interrupt_stale(self, *, before: datetime, reason: str, at: datetime) -> list[int]:
        """Mark every queued or running run whose heartbeat is older than ``before``
        ``interrupted`` with ``reason``; return their ids. Safe with several replicas: a
        run whose owner is alive keeps a fresh heartbeat."""
        before, at = ensure_utc(before, name="before"), ensure_utc(at, name="at")
        with self._writing("interrupting abandoned runs") as connection:
            return writes.interrupt_stale(connection, before=before, reason=reason, at=at)

    # -- reads ------------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run | None:
        """The run with ``run_id`` and its metrics sorted by name, or ``None``."""
        if not 0 < run_id < 2**31:
            return None  # ids are 32-bit; PostgreSQL would refuse to compare with this
        with self._reading(f"reading run {run_id}") as connection:
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
        with self._reading("listing runs") as connection:
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
        with self._reading(f"reading run request {request_id!r}") as connection:
            return requests.get_request(connection, request_id)

    def list_cases(
        self, run_id: int, *, limit: int | None = 100, offset: int = 0
    ) -> list[CaseResult]:
        """A page of a run's case results ordered by ``case_id`` (all of them when
        ``limit`` is None)."""
        if (limit is not None and limit < 1) or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got: {limit}, {offset}")
        with self._reading(f"listing cases of run {run_id}") as connection:
            return reads.list_cases(connection, run_id, limit=limit, offset=offset)

    def count_cases(self, run_id: int) -> tuple[int, int]:
        """How many cases of the run are stored, and how many of them failed."""
        with self._reading(f"counting cases of run {run_id}") as connection:
            return reads.count_cases(connection, run_id)

    def latest_scores(self, *, suite: str | None = None) -> list[LatestScore]:
        """Metrics of the latest succeeded run of every suite x model (of one suite)."""
        with self._reading("reading latest scores") as connection:
            return reads.latest_scores(connection, suite=suite)

    def latest_fairness(self) -> list[tuple[str, str, FairnessValue]]:
        """(suite, model, fairness measure) of the latest succeeded run of every suite x
        model whose suite has ``fairness``."""
        with self._reading("reading latest fairness measures") as connection:
            return reads.latest_fairness(connection)

    def run_summaries(self) -> list[RunSummary]:
        """Run counts and last run times of every suite x model."""
        with self._reading("summarising runs") as connection:
            return reads.run_summaries(connection)

    # -- streams and drift ------------------------------------------------------------

    def append_batch(
        self,
        stream: str,
        *,
        received_at: datetime,
        first_ts: datetime,
        last_ts: datetime,
        n_rows: int,
        payload: bytes,
    ) -> tuple[int, int]:
        """Store one validated ingest batch whole; return (batch id, its first row number)."""
        if n_rows < 1:
            raise ValueError(f"n_rows must be positive, got: {n_rows}")
        received_at = ensure_utc(received_at, name="received_at")
        first_ts = ensure_utc(first_ts, name="first_ts")
        last_ts = ensure_utc(last_ts, name="last_ts")
        if last_ts < first_ts:
            raise ValueError(f"last_ts {last_ts} is before first_ts {first_ts}")
        with self._writing(f"appending a batch to stream {stream!r}") as connection:
            return drift.append_batch(
                connection,
                stream,
                received_at=received_at,
                first_ts=first_ts,
                last_ts=last_ts,
                n_rows=n_rows,
                payload=payload,
            )

    def append_pending(
        self, batches: Sequence[ingest.PendingBatch], *, key_ttl: timedelta
    ) -> list[ingest.Appended]:
        """Store validated batches in one transaction, each after its stream's last row,
        answering a batch whose idempotency key is known from that key instead (see
        ``monitor.store.ingest``). Raises ``KeyReused`` for a key used for another body
        and ``StoreBusy`` while SQLite stays locked; either way nothing is stored."""
        for batch in batches:
            if batch.n_rows < 1:
                raise ValueError(f"n_rows must be positive, got: {batch.n_rows}")
            for name in ("received_at", "first_ts", "last_ts"):
                ensure_utc(getattr(batch, name), name=name)
            if batch.last_ts < batch.first_ts:
                raise ValueError(f"last_ts {batch.last_ts} is before first_ts {batch.first_ts}")
        with self._writing(f"appending {len(batches)} batch(es)") as connection:
            return [ingest.append(connection, b, key_ttl=key_ttl) for b in batches]

    def delete_batches_before(self, stream: str, before: datetime) -> int:
        """Drop batches of ``stream`` received before ``before`` (retention)."""
        before = ensure_utc(before, name="before")
        with self._writing(f"expiring batches of stream {stream!r}") as connection:
            return drift.delete_batches_before(connection, stream, before)

    def batches_between(self, stream: str, start: datetime, end: datetime) -> list[StreamBatch]:
        """Batches of ``stream`` holding a row timestamped in ``[start, end)``."""
        start, end = ensure_utc(start, name="start"), ensure_utc(end, name="end")
        with self._reading(f"reading batches of stream {stream!r}") as connection:
            return drift.batches_between(connection, stream, start, end)

    def batches_for_rows(self, stream: str, first_row: int, end_row: int) -> list[StreamBatch]:
        """Batches of ``stream`` holding a row numbered in ``[first_row, end_row)``."""
        with self._reading(f"reading batches of stream {stream!r}") as connection:
            return drift.batches_for_rows(connection, stream, first_row, end_row)

    def upsert_labels(
        self, stream: str, labels: Sequence[tuple[str, str | None]], *, at: datetime
    ) -> None:
        """Store late labels ``(record_id, label)`` of ``stream``, replacing older ones."""
        at = ensure_utc(at, name="at")
        ids = [record_id for record_id, _ in labels]
        if len(set(ids)) != len(ids):
            raise ValueError("labels name a record id twice")
        if not labels:
            return
        with self._writing(f"storing labels of stream {stream!r}") as connection:
            drift.upsert_labels(connection, stream, labels, at=at)

    def labels_for(self, stream: str, record_ids: Sequence[str]) -> dict[str, str | None]:
        """Stored labels of those records of ``stream``."""
        with self._reading(f"reading labels of stream {stream!r}") as connection:
            return drift.labels_for(connection, stream, record_ids)

    def stream_counts(self) -> list[StreamCount]:
        """Rows ingested per stream."""
        with self._reading("counting stream rows") as connection:
            return drift.stream_counts(connection)

    def stream_extent(self, stream: str) -> StreamExtent | None:
        """The retained rows of ``stream``; ``None`` before its first batch."""
        with self._reading(f"reading the extent of stream {stream!r}") as connection:
            return drift.stream_extent(connection, stream)

    def save_profile(
        self, stream: str, *, reference_hash: str, at: datetime, n_rows: int, profile: bytes
    ) -> int:
        """Keep the reference profile of ``stream`` once per reference; return its id."""
        at = ensure_utc(at, name="at")
        with self._writing(f"storing the reference profile of {stream!r}") as connection:
            return drift.save_profile(
                connection,
                stream,
                reference_hash=reference_hash,
                created_at=at,
                n_rows=n_rows,
                profile=profile,
            )

    def update_profile(self, stream: str, profile_id: int, profile: bytes) -> None:
        """Store profile ``profile_id`` again, with the thresholds calibrated since."""
        with self._writing(f"updating the reference profile of {stream!r}") as connection:
            drift.update_profile(connection, profile_id, profile)

    def get_profile(self, stream: str, reference_hash: str) -> StoredProfile | None:
        """The stored profile of ``stream`` for that reference, or ``None``."""
        with self._reading(f"reading the reference profile of {stream!r}") as connection:
            return drift.get_profile(connection, stream, reference_hash)

    def add_drift_report(self, report: NewDriftReport) -> int | None:
        """Store a drift report; ``None`` when its window already has one."""
        ensure_utc(report.created_at, name="created_at")
        if report.drift_share is not None and not math.isfinite(report.drift_share):
            raise ValueError(f"drift_share must be finite, got: {report.drift_share}")
        with self._writing(f"storing a drift report of {report.stream!r}") as connection:
            return drift.add_drift_report(connection, report)

    def get_drift_report(self, report_id: int) -> DriftReport | None:
        """The drift report ``report_id`` (``has_html`` tells whether HTML is stored)."""
        with self._reading(f"reading drift report {report_id}") as connection:
            return drift.get_drift_report(connection, report_id)

    def get_drift_html(self, report_id: int) -> str | None:
        """The HTML report stored with drift report ``report_id``, if any."""
        with self._reading(f"reading the HTML of drift report {report_id}") as connection:
            return drift.get_drift_html(connection, report_id)

    def list_drift_reports(
        self, stream: str, *, limit: int = 50, before_id: int | None = None
    ) -> list[DriftReport]:
        """Drift reports of ``stream`` newest first; page with ``before_id``."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got: {limit}")
        with self._reading(f"listing drift reports of {stream!r}") as connection:
            return drift.list_drift_reports(connection, stream, limit=limit, before_id=before_id)

    def last_window_key(self, stream: str, kind: str) -> str | None:
        """The key of the newest ``kind`` (``rows``/``time``) window judged of ``stream``."""
        with self._reading(f"reading the watermark of stream {stream!r}") as connection:
            return drift.last_window_key(connection, stream, kind)

    def latest_drift_reports(self) -> list[DriftReport]:
        """The newest ``ok`` drift report of every stream."""
        with self._reading("reading latest drift reports") as connection:
            return drift.latest_drift_reports(connection)

    def save_performance(self, row: WindowPerformance) -> WindowPerformance:
        """Store a window's realized performance, replacing the window's previous one."""
        for name in ("due_at", "created_at", "updated_at"):
            ensure_utc(getattr(row, name), name=name)
        with self._writing(f"storing the performance of {row.stream!r}") as connection:
            row_id = performance.save_performance(connection, row)
        return replace(row, id=row_id)

    def performance_for(
        self, stream: str, window_keys: Sequence[str]
    ) -> dict[str, WindowPerformance]:
        """The stored performance of those windows of ``stream``, by window key."""
        with self._reading(f"reading the performance of {stream!r}") as connection:
            return performance.performance_for(connection, stream, window_keys)

    def open_performance(
        self, stream: str, *, since: datetime, limit: int
    ) -> list[WindowPerformance]:
        """The newest ``limit`` windows of ``stream`` judged since ``since``, oldest first."""
        since = ensure_utc(since, name="since")
        with self._reading(f"reading the open windows of {stream!r}") as connection:
            return performance.open_performance(connection, stream, since=since, limit=limit)

    def latest_label_at(self, stream: str) -> datetime | None:
        """When the newest label of ``stream`` arrived."""
        with self._reading(f"reading the labels of {stream!r}") as connection:
            return performance.latest_label_at(connection, stream)

    def latest_performance(self) -> list[WindowPerformance]:
        """The newest scored (``ok``) window's performance of every stream."""
        with self._reading("reading latest window performance") as connection:
            return performance.latest_performance(connection)

    # -- baselines and verdicts -------------------------------------------------------

    def promote_baseline(
        self,
        run_id: int,
        *,
        by: str,
        reason: str,
        at: datetime,
        model: str | None = None,
        only_if_none: bool = False,
    ) -> Baseline | None:
        """Make a succeeded run the active baseline of its suite x model (or of ``model``),
        keeping the earlier promotions as history. ``LookupError`` for an unknown run,
        ``ValueError`` for a run that did not succeed. With ``only_if_none`` (``baseline =
        "auto"``) an existing baseline is kept and None returned. Every promotion goes into
        the audit log in the same transaction."""
        at = ensure_utc(at, name="at")
        try:
            with self._writing(f"promoting run {run_id} to baseline") as connection:
                promoted = verdicts.promote(
                    connection,
                    run_id,
                    model=model,
                    by=by,
                    reason=reason,
                    at=at,
                    only_if_none=only_if_none,
                )
                if promoted is not None:
                    audit.append(
                        connection,
                        at=at,
                        actor=by,
                        action="baseline.promoted",
                        target=f"run {run_id}",
                        reason=reason,
                        details={
                            "baseline_id": promoted.id,
                            "run_id": run_id,
                            "suite": promoted.suite,
                            "model": promoted.model,
                            "dataset_sha256": promoted.dataset_sha256,
                            "tier": promoted.tier,
                        },
                    )
                return promoted
        except StoreError as exc:
            if only_if_none and isinstance(exc.__cause__, IntegrityError):
                # Another replica promoted at the same moment: the unique index kept one.
                return None
            raise

    def active_baseline(self, suite: str, model: str, tier: str = "") -> Baseline | None:
        """The active baseline of ``suite`` x ``model`` for runs of ``tier``, if any."""
        with self._reading(f"reading the baseline of {suite} x {model}") as connection:
            return verdicts.active_baseline(connection, suite, model, tier)

    def get_baseline(self, baseline_id: int) -> Baseline | None:
        with self._reading(f"reading baseline {baseline_id}") as connection:
            return verdicts.get_baseline(connection, baseline_id)

    def list_baselines(
        self, *, suite: str | None = None, model: str | None = None, limit: int = 100
    ) -> list[Baseline]:
        """Every promotion (active or not), newest first."""
        with self._reading("listing baselines") as connection:
            return verdicts.list_baselines(connection, suite=suite, model=model, limit=limit)

    def add_verdict(
        self,
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
        """Store a verdict with its metrics in one transaction; returns its id. ``review``
        is ``NEEDS_REVIEW`` for a verdict a person must approve, None when none is asked."""
        at = ensure_utc(at, name="at")
        with self._writing(f"storing the verdict of run {run_id}") as connection:
            return verdicts.add_verdict(
                connection,
                run_id=run_id,
                baseline_run_id=baseline_run_id,
                suite=suite,
                model=model,
                outcome=outcome,
                reason=reason,
                at=at,
                dataset_changed=dataset_changed,
                metrics=metrics,
                changes=changes,
                review=review,
            )

    def review_verdict(
        self, verdict_id: int, *, approve: bool, by: str, reason: str, at: datetime
    ) -> Verdict:
        """Approve or reject a verdict waiting for review, recording it in the audit log
        in the same transaction. ``LookupError`` for an unknown verdict, ``ValueError`` for
        one that needs no review or was decided already (the message says by whom)."""
        at = ensure_utc(at, name="at")
        if not by:
            raise ValueError("a review needs the reviewer's name")
        word = "approving" if approve else "rejecting"
        with self._writing(f"{word} verdict {verdict_id}") as connection:
            return verdicts.review(
                connection, verdict_id, approve=approve, by=by, reason=reason, at=at
            )

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The audit log from ``since`` up to ``until``: newest first (page on with
        ``before_id``), or oldest first after ``after_id``. The log has no update or delete:
        entries are only written with the change they record."""
        if before_id is not None and after_id is not None:
            raise ValueError("give before_id or after_id, not both")
        if action is not None and action not in audit.ACTIONS:
            known = ", ".join(audit.ACTIONS)
            raise ValueError(f"unknown audit action {action!r}, expected one of {known}")
        since = None if since is None else ensure_utc(since, name="since")
        until = None if until is None else ensure_utc(until, name="until")
        with self._reading("reading the audit log") as connection:
            return audit.entries(
                connection,
                since=since,
                until=until,
                action=action,
                before_id=before_id,
                after_id=after_id,
                limit=limit,
            )

    def get_verdict(self, verdict_id: int) -> Verdict | None:
        with self._reading(f"reading verdict {verdict_id}") as connection:
            return verdicts.get_verdict(connection, verdict_id)

    def list_verdicts(
        self,
        *,
        suite: str | None = None,
        model: str | None = None,
        run_id: int | None = None,
        baseline_run_id: int | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[Verdict]:
        """Verdicts with their metrics, newest first."""
        with self._reading("listing verdicts") as connection:
            return verdicts.list_verdicts(
                connection,
                suite=suite,
                model=model,
                run_id=run_id,
                baseline_run_id=baseline_run_id,
                limit=limit,
                before_id=before_id,
            )

    def baseline_scores(self) -> list[LatestScore]:
        """Every metric of each active baseline run (for the metrics exporter)."""
        with self._reading("reading baseline scores") as connection:
            return verdicts.baseline_scores(connection)

    def latest_verdicts(self) -> list[Verdict]:
        """The newest verdict of every suite x model."""
        with self._reading("reading latest verdicts") as connection:
            return verdicts.latest_verdicts(connection)

    # -- alerts -----------------------------------------------------------------------

    def alert_states(self, phase: Phase | None = None) -> list[AlertState]:
        """Stored alert states (optionally of one phase), most recently updated first."""
        with self._reading("reading alert states") as connection:
            return alerts.load_states(connection, phase)

    def apply_alert_transitions(
        self, transitions: Sequence[Transition], messages: Sequence[OutboxMessage]
    ) -> None:
        """Store alert state changes and their outbox rows in ONE transaction."""
        with self._writing("storing alert state changes") as connection:
            alerts.apply_transitions(connection, transitions, messages)

    def enqueue_notifications(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue notifications that change no state (test sends, Alertmanager refreshes)."""
        with self._writing("queueing notifications") as connection:
            alerts.enqueue(connection, messages)

    def last_notified(self, sinks: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """When each (fingerprint, sink) last had a notification queued."""
        with self._reading("reading notification times") as connection:
            return alerts.last_sent(connection, sinks)

    def notification_sequences(self, fingerprints: Sequence[str]) -> dict[str, int]:
        """The highest notification ``sequence`` queued so far per fingerprint."""
        with self._reading("reading notification sequences") as connection:
            return alerts.sequences(connection, fingerprints)

    def pending_notifications(self, sinks: Sequence[str]) -> set[tuple[str, str]]:
        """The (fingerprint, sink) pairs with a notification still waiting."""
        with self._reading("reading pending notifications") as connection:
            return alerts.pending_keys(connection, sinks)

    def dead_letters(self, *, sink: str | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Dead letters newest first, optionally of one sink."""
        return self.list_notifications(status=OutboxStatus.DEAD, sink=sink, limit=limit)

    def redrive_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        sink: str | None = None,
        at: datetime,
        by: str,
        comment: str = "",
    ) -> list[OutboxMessage]:
        """Queue dead letters (``ids``, or every one; optionally of one sink) again."""
        with self._writing("redriving dead letters") as connection:
            return alerts.redrive_dead(
                connection, ids=ids, sink=sink, at=ensure_utc(at), by=by, comment=comment
            )

    def discard_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        sink: str | None = None,
        at: datetime,
        by: str,
        comment: str = "",
    ) -> list[OutboxMessage]:
        """Give up on dead letters (``ids``, or every one; optionally of one sink)."""
        with self._writing("discarding dead letters") as connection:
            return alerts.discard_dead(
                connection, ids=ids, sink=sink, at=ensure_utc(at), by=by, comment=comment
            )

    def claim_notifications(
        self, *, now: datetime, lease_until: datetime, limit: int = 20
    ) -> list[OutboxMessage]:
        """Lease due outbox rows for delivery one per sink and alert, in order."""
        now, lease_until = ensure_utc(now, name="now"), ensure_utc(lease_until, name="lease_until")
        with self._writing("claiming notifications") as connection:
            return alerts.claim_due(connection, now=now, lease_until=lease_until, limit=limit)

    def record_delivery_attempt(
        self,
        message_id: str,
        *,
        at: datetime,
        status: OutboxStatus,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Count one delivery attempt: delivered, retry at ``next_attempt_at``, or dead."""
        with self._writing(f"recording delivery of {message_id}") as connection:
            alerts.record_attempt(
                connection,
                message_id,
                at=ensure_utc(at, name="at"),
                status=status,
                next_attempt_at=next_attempt_at,
                error=error,
            )

    def list_notifications(
        self, *, status: OutboxStatus | None = None, sink: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        """Outbox rows newest first, optionally of one status (``dead``: dead letters)
        and one sink."""
        with self._reading("listing notifications") as connection:
            return alerts.list_outbox(connection, status=status, sink=sink, limit=limit)

    def outbox_stats(self) -> OutboxStats:
        """Outbox rows by status and failed attempts, for metrics."""
        with self._reading("counting notifications") as connection:
            return alerts.outbox_stats(connection)

    def add_silence(
        self,
        *,
        matchers: dict[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str = "",
    ) -> int:
        """Silence direct sinks for alerts matching ``matchers`` until ``ends_at``; the
        silence goes into the audit log in the same transaction."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        starts_at, ends_at = ensure_utc(starts_at, name="starts_at"), ensure_utc(ends_at)
        if ends_at <= starts_at:
            raise ValueError(f"ends_at must be after starts_at, got: {ends_at.isoformat()}")
        with self._writing("adding a silence") as connection:
            silence_id = alerts.add_silence(
                connection,
                matchers=matchers,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=created_by,
                comment=comment,
            )
            audit.append(
                connection,
                at=starts_at,
                actor=created_by,
                action="alert.silenced",
                target=f"silence {silence_id}",
                reason=comment,
                details={
                    "silence_id": silence_id,
                    "matchers": matchers,
                    "starts_at": starts_at.isoformat(),
                    "ends_at": ends_at.isoformat(),
                },
            )
            return silence_id

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """Silences newest first; with ``active_at``, only those not over by then."""
        with self._reading("reading silences") as connection:
            return alerts.silences(connection, active_at=active_at)

    def alert_history(
        self, *, fingerprint: str | None = None, limit: int = 100
    ) -> list[HistoryEntry]:
        """Alert phase changes, newest first."""
        with self._reading("reading alert history") as connection:
            return alerts.history(connection, fingerprint=fingerprint, limit=limit)

    # -- retention --------------------------------------------------------------------

    def expire(
        self, kind: ExpiringKind, *, before: datetime, limit: int = 500, max_cases: int = 5000
    ) -> int:
        """Delete one batch (at most ``limit`` rows; for runs, about ``max_cases`` case
        rows) of ``kind`` older than ``before``, in one short write transaction; return
        how many rows went. Call again until it returns less than ``limit``. What is never
        deleted is listed in ``monitor.store.retention``."""
        before = ensure_utc(before, name="before")
        if kind != "runs" and kind not in _EXPIRE:
            raise ValueError(f"kind must be one of {', '.join(RETENTION_ORDER)}, got: {kind!r}")
        if limit < 1 or max_cases < 1:
            raise ValueError(f"need limit and max_cases >= 1, got: {limit}, {max_cases}")
        with self._writing(f"deleting expired {kind.replace('_', ' ')}") as connection:
            if kind == "runs":
                return retention.delete_runs(
                    connection, before=before, limit=limit, max_cases=max_cases
                )
            return _EXPIRE[kind](connection, before=before, limit=limit)

    def rebuild_rollups(self) -> int:
        """Recompute every suite x model's rollup row from the stored runs; return how many
        pairs. For rows written around the store (bulk loads); the writes keep them."""
        with self._writing("rebuilding run rollups") as connection:
            return rollups.rebuild(connection)

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        # The transaction begins on first use and is rolled back on close: reads
        # change nothing, and rollback releases SQLite's read snapshot promptly.
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise self._error(action, exc) from exc

    @contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        try:
            with self._writer.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise self._error(action, exc) from exc

    def _error(self, action: str, exc: SQLAlchemyError) -> StoreError:
        message = f"{action}: {describe_error(exc, self._engine.url)}"
        if isinstance(exc, OperationalError) and "database is locked" in str(exc.orig):
            return StoreBusy(message)  # SQLite's lock outlasted the busy timeout
        kind = StoreUnavailable if unreachable(exc) else StoreError
        return kind(message)


ExpiringKind = Literal["verdicts", "runs", "drift_reports", "alert_history", "outbox"]
"""What ``Store.expire`` deletes, in the order a retention pass goes: verdicts before runs,
since a run a verdict refers to is kept."""

RETENTION_ORDER: tuple[ExpiringKind, ...] = (
    "verdicts",
    "runs",
    "drift_reports",
    "alert_history",
    "outbox",
)

_EXPIRE: dict[str, Callable[..., int]] = {
    "verdicts": retention.delete_verdicts,
    "drift_reports": retention.delete_drift_reports,
    "alert_history": retention.delete_alert_history,
    "outbox": retention.delete_outbox,
}

_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def unreachable(exc: SQLAlchemyError) -> bool:
    """Whether ``exc`` says the database could not be reached or dropped the connection
    (or, on SQLite, was locked or unreadable for a moment), rather than refused what was
    asked: only then may the same operation succeed when tried again."""
    if isinstance(exc, DisconnectionError | PendingRollbackError):
        # PendingRollbackError: the connection dropped inside a transaction and SQLAlchemy
        # refuses to reconnect on it until rolled back; the next transaction reconnects.
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        return any(word in str(exc.orig).lower() for word in _SQLITE_TRANSIENT)
    return True
