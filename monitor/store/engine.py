"""Engines for the two supported backends, configured the way the store needs them.

SQLite (the embedded default) is tuned for one process with several threads:

- WAL journal, so readers never block the writer and vice versa;
- a busy timeout, so a writer waits for the lock instead of failing at once;
- foreign keys on (SQLite leaves them off per connection);
- SQLAlchemy, not pysqlite, decides when a transaction begins. pysqlite's legacy mode
  skips ``BEGIN`` before SELECTs and DDL, which breaks transactional migrations, and a
  deferred transaction that reads and then writes can fail with "database is locked"
  *without* waiting on the busy timeout (SQLite cannot upgrade a read lock while
  another writer is active). So writes begin with ``BEGIN IMMEDIATE``, taking the write
  lock up front where the busy timeout applies; reads use plain ``BEGIN``.

A write connection is one opened from ``write_engine(engine)``. PostgreSQL uses psycopg 3
with pre-ping so a restarted server costs one failed checkout, not a failed request.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

from monitor.errors import StoreError

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "create_store_engine",
    "describe_error",
    "dialect_insert",
    "redact_url",
    "write_engine",
    "write_generation",
]

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_CONNECT_TIMEOUT_S = 10

# Execution option that marks a connection as a writer; read by the "begin" hook.
_IMMEDIATE = "sqlite_immediate"


def redact_url(url: str | URL) -> str:
    """Render a database URL with any password replaced by ``***``, safe to log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable, so we cannot tell where a password would be: show nothing.
        return "<unparseable database url>"


def describe_error(exc: BaseException, url: URL) -> str:
    """A one-line ``ErrorClass: message`` for ``exc``, with ``url``'s password masked.

    For driver errors the driver's own exception is described: SQLAlchemy's wrapper adds
    the SQL statement and its parameters, which may hold case data. A driver rarely
    echoes a password, but connection strings do end up in messages, so it is masked
    wherever it appears.
    """
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(cause).split())
    if url.password:
        message = message.replace(str(url.password), "***")
    return f"{type(cause).__name__}: {message}" if message else type(cause).__name__


def create_store_engine(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql://...``).

    ``postgresql://`` and ``postgres://`` URLs are given the psycopg 3 driver. For a
    SQLite file the parent directory is created if missing, so a fresh install works
    with a default path. Raises ``StoreError`` for a malformed or unsupported URL.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, busy_timeout_ms)
    if backend == "postgresql":
        return _postgresql_engine(parsed)
    raise StoreError(
        f"store url {redact_url(parsed)}: unsupported backend {backend!r}; "
        "expected sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def dialect_insert(connection: Connection) -> Any:
    """The INSERT construct with ``ON CONFLICT`` support for the connection's backend: both
    PostgreSQL and SQLite spell upserts the same way through it."""
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def write_engine(engine: Engine) -> Engine:
    """The same engine (and pool), but its transactions begin as writers.

    On SQLite that is ``BEGIN IMMEDIATE``; elsewhere the option is ignored.
    """
    return engine.execution_options(**{_IMMEDIATE: True})


class WriteGeneration:
    """How many write transactions this process committed through one engine: a number
    that changes whenever what a reader would see may have changed (``/metrics`` keeps
    its snapshot while it does not). Writes of other processes are not seen here."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1


_GENERATIONS: weakref.WeakKeyDictionary[Any, WriteGeneration] = weakref.WeakKeyDictionary()
_WROTE = "monitor_wrote"
_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE")


def write_generation(engine: Engine) -> WriteGeneration:
    """The ``WriteGeneration`` of ``engine`` (and of every engine sharing its pool),
    installing its hooks the first time. It moves twice per write transaction: at the
    commit, and once the connection is back in the pool (after the commit is visible), so
    a reader that looked between the two is invalidated by the second."""
    pool = engine.pool
    if (found := _GENERATIONS.get(pool)) is not None:
        return found
    generation = _GENERATIONS[pool] = WriteGeneration()

    @event.listens_for(engine, "after_cursor_execute")
    def _mark(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip()[:7].upper().startswith(_DML):
            conn.info[_WROTE] = True

    @event.listens_for(engine, "commit")
    def _commit(conn: Connection) -> None:
        if conn.info.get(_WROTE):
            generation.bump()

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Connection) -> None:
        conn.info.pop(_WROTE, None)

    @event.listens_for(pool, "checkin")
    def _checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if record.info.pop(_WROTE, False):
            generation.bump()

    return generation


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store url {redact_url(url)}: cannot parse: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    database = url.database
    if database and database != ":memory:" and not url.query.get("uri"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        # Take transaction control away from pysqlite; the "begin" hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            _enable_wal(cursor, busy_timeout_ms / 1000)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor: sqlite3.Cursor, timeout_s: float) -> None:
    """Switch the database file to WAL (a persistent setting), retrying while locked.

    Switching needs an exclusive lock, and SQLite reports "database is locked" at once,
    without consulting the busy handler, when another connection holds or is taking one.
    That happens when several processes open a brand-new file together (a CLI command
    beside the daemon). So retry with a short backoff for up to the busy timeout.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            # An in-memory database answers "memory" and stays so: that is fine.
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _postgresql_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # Without it psycopg waits on the OS, and a readiness probe would hang.
        connect_args["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
