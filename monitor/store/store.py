"""The store: the daemon's single source of truth for runs and their results.

:class:`Store` is a synchronous facade over one SQLAlchemy engine. The daemon calls it
from worker threads; the engine's pool hands each call its own connection, so one
``Store`` may be shared by every thread. Each method is one transaction: reads run in
a plain transaction, writes in a write transaction (``BEGIN IMMEDIATE`` on SQLite, see
``engine.py``), so a method either takes effect whole or not at all.

Database failures surface as ``StoreError`` naming the operation and the driver's error,
never the database password; invalid arguments raise ``ValueError`` before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError
from monitor.records import (
    CaseResult,
    CatalogModel,
    CatalogSuite,
    LatestScore,
    MetricValue,
    Run,
    RunOperations,
    RunStatus,
    RunSummary,
    SliceMetric,
)
from monitor.store import migrate, reads, writes
from monitor.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_store_engine,
    describe_error,
    redact_url,
    write_engine,
)
from monitor.store.types import ensure_utc

__all__ = ["Store"]


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
    ) -> int:
        """Record a new ``running`` run of ``suite`` against ``model``; return its id."""
        at = ensure_utc(at, name="at")
        with self._writing(f"creating a run of {suite!r} x {model!r}") as connection:
            return writes.create_run(
                connection,
                suite=suite,
                model=model,
                trigger=trigger,
                dataset_sha256=dataset_sha256,
                config_hash=config_hash,
                at=at,
            )

    def append_cases(self, run_id: int, cases: Sequence[CaseResult]) -> None:
        """Store a batch of a running run's case results in one transaction.

        The runner calls this as results arrive (every few hundred cases or second), so
        a long run never holds every result in memory and a crashed run keeps the cases
        it had. Raises ``StoreError`` if the run is not running or a case id is already
        stored for it; then nothing of the batch is stored.
        """
        with self._writing(f"storing {len(cases)} cases of run {run_id}") as connection:
            writes.append_cases(connection, run_id, cases)

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
    ) -> None:
        """Store a running run's last cases, aggregates and final ``status``, all or
        nothing. ``n_cases`` and ``n_errors`` count every stored case of the run.

        Raises ``StoreError`` if the run does not exist, is no longer running, or the
        results cannot be stored (e.g. two cases share a ``case_id``); then nothing
        changed. Raises ``ValueError`` for a non-final status or a non-finite metric.
        """
        at = ensure_utc(at, name="at")
        writes.check_finish(status, metrics, slices)
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
            )

    def interrupt_running(self, *, reason: str, at: datetime) -> list[int]:
        """Mark every running run ``interrupted`` with ``reason``; return their ids.

        Called at daemon start: a run still ``running`` then was orphaned by a crash.
        """
        at = ensure_utc(at, name="at")
        with self._writing("interrupting running runs") as connection:
            return writes.interrupt_running(connection, reason=reason, at=at)

    # -- reads ------------------------------------------------------------------------

    def get_run(self, run_id: int) -> Run | None:
        """The run with ``run_id`` and its metrics sorted by name, or ``None``."""
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

    def list_cases(self, run_id: int, *, limit: int = 100, offset: int = 0) -> list[CaseResult]:
        """A page of a run's case results ordered by ``case_id``."""
        if limit < 1 or offset < 0:
            raise ValueError(f"need limit >= 1 and offset >= 0, got: {limit}, {offset}")
        with self._reading(f"listing cases of run {run_id}") as connection:
            return reads.list_cases(connection, run_id, limit=limit, offset=offset)

    def count_cases(self, run_id: int) -> tuple[int, int]:
        """How many cases of the run are stored, and how many of them failed."""
        with self._reading(f"counting cases of run {run_id}") as connection:
            return reads.count_cases(connection, run_id)

    def latest_scores(self) -> list[LatestScore]:
        """Metrics of the latest succeeded run of every suite x model."""
        with self._reading("reading latest scores") as connection:
            return reads.latest_scores(connection)

    def run_summaries(self) -> list[RunSummary]:
        """Run counts and last run times of every suite x model."""
        with self._reading("summarising runs") as connection:
            return reads.run_summaries(connection)

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
        return StoreError(f"{action}: {describe_error(exc, self._engine.url)}")
