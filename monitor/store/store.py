"""The store: the daemon's single source of truth for runs and their results.

:class:`Store` owns one SQLAlchemy engine and its lifecycle (migrations, readiness,
close); what is stored is reached through its parts, one small class per domain sharing
the engine and the transaction helpers here: ``store.runs`` (``run_store.py``),
``store.queue`` (``queue.py``), ``store.windows`` (``window_queue.py``),
``store.streams`` (``stream_store.py``),
``store.verdicts`` (``verdict_store.py``), ``store.alerts`` (``alert_store.py``),
``store.audit`` (``audit_store.py``) and ``store.retention`` (``retention_store.py``).
Consumers are typed against the parts they use (``monitor.store.parts``), not the whole.

The daemon calls the store from worker threads; the engine's pool hands each call its
own connection, so one ``Store`` may be shared by every thread. Each method of a part is
one transaction: reads run in a plain transaction, writes in a write transaction
(``BEGIN IMMEDIATE`` on SQLite, see ``engine.py``), so a method either takes effect
whole or not at all.

Database failures surface as ``StoreError`` naming the operation and the driver's error,
never the database password; a lost or refused connection (or a locked SQLite file) as
its subclass ``StoreUnavailable``, which is worth retrying. Invalid arguments raise
``ValueError`` before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
    SQLAlchemyError,
)

from monitor.errors import StoreBusy, StoreError, StoreUnavailable
from monitor.store import migrate
from monitor.store.alert_store import AlertStore
from monitor.store.audit_store import AuditLog
from monitor.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_store_engine,
    describe_error,
    redact_url,
    write_engine,
    write_generation,
)
from monitor.store.queue import RunQueue
from monitor.store.retention_store import RetentionStore
from monitor.store.run_store import RunStore
from monitor.store.stream_store import StreamStore
from monitor.store.verdict_store import VerdictStore
from monitor.store.window_queue import WindowQueue

__all__ = ["Store"]


class Store:
    """The engine and its lifecycle, and the parts of the store by domain.

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
        self.runs = RunStore(self)
        """Runs, their cases, the catalog, API run requests and the judge answer cache."""
        self.queue = RunQueue(self)
        """The work queue: queued runs, their leases and the replicas holding them."""
        self.windows = WindowQueue(self)
        """The stream window queue: due windows and the leases replicas hold on them."""
        self.streams = StreamStore(self)
        """Ingested batches, labels, reference profiles, drift reports and performance."""
        self.verdicts = VerdictStore(self)
        """Baselines, verdicts and their reviews."""
        self.alerts = AlertStore(self)
        """Alert states and history, the notification outbox, silences."""
        self.audit = AuditLog(self)
        """The audit log."""
        self.retention = RetentionStore(self)
        """Retention batches and the rollup rebuild."""

    @property
    def write_generation(self) -> int:
        """A number that changes whenever this process commits a write to the store."""
        return self._writes.value

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
