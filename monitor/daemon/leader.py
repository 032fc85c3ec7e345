"""Which replica schedules: one leader per store.

PostgreSQL: the replicas elect a leader with a session-level ``pg_try_advisory_lock``
held on a dedicated connection (autocommit, so it never sits idle in a transaction). A
replica that does not lead tries again every ``[store] election_every``; the leader
checks its connection as often. When the connection is lost (or a check does not answer
within ``election_every``) the leader stops leading at once: PostgreSQL releases a
session lock with its session, so another replica may already hold it. The session sets
its own TCP keepalive (:data:`SESSION_KEEPALIVE`), so a leader whose host dies loses the
lock in about 25 s rather than when the server's default keepalive gives up. The lock key is
derived from the database and schema, so stores sharing a server do not share a leader.

Two leaders can overlap for at most one ``election_every`` (the old one has not noticed
yet); the unique index on a run's schedule slot keeps them from queueing a slot twice.

SQLite: one process only. The daemon takes an exclusive ``flock`` on ``<database>.lock``
and always leads; a second daemon on the same file refuses to start, naming the pid that
holds it. The lock dies with its process (even on kill -9).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StartupError
from monitor.store import create_store_engine, redact_url

logger = logging.getLogger(__name__)

KEY_PREFIX = b"monitor scheduling leader\0"

SESSION_KEEPALIVE = {
    "tcp_keepalives_idle": 10,
    "tcp_keepalives_interval": 5,
    "tcp_keepalives_count": 3,
}
"""The TCP keepalive of the election session, set by the session itself (any user may):
when the leader's *host* dies or is cut off, its connection is never closed, and
PostgreSQL would hold the lock until the operating system's keepalive gives up (two
hours and more by default); with these the server drops the session, and the lock, about
25 s (10 + 3 x 5) after the host went silent. The leader itself has stopped leading by
then: its own check fails within ``election_every``. Ignored on a Unix socket."""

OnChange = Callable[[bool], object]
"""Called on the event loop with the new state whenever leadership is won or lost."""


def lock_key(database: str, schema: str) -> int:
    """The advisory lock key of the store in ``database``.``schema``: a signed 64-bit
    number from a hash of both (PostgreSQL's advisory keys are ``bigint``)."""
    digest = hashlib.blake2b(
        KEY_PREFIX + database.encode() + b"\0" + schema.encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class Leadership:
    """Leader election on PostgreSQL. ``run()`` loops until cancelled; ``leading`` is
    the current state, ``on_change`` hears every change."""

    def __init__(
        self,
        url: str,
        *,
        every: timedelta,
        on_change: OnChange,
        engine: Engine | None = None,
    ) -> None:
        # A dedicated engine: the lock lives as long as this one connection.
        self._engine = engine or create_store_engine(url)
        self._every = every.total_seconds()
        self._on_change = on_change
        self._connection: Connection | None = None
        self._key: int | None = None
        self._attempts = 0
        self.leading = False
        self.won_at_start = False
        """Whether this process led from its first attempt (it started a cluster, or
        runs alone): then it does what a schedule's ``run_at_start`` asks."""

    async def run(self) -> None:
        try:
            while True:
                try:
                    won = await asyncio.wait_for(asyncio.to_thread(self._step), self._every)
                except TimeoutError:
                    won = False
                    self._drop("the store did not answer within election_every")
                self._attempts += 1
                self.won_at_start = self.won_at_start or (won and self._attempts == 1)
                self._set(won)
                await asyncio.sleep(self._every)
        finally:
            self._set(False)
            await asyncio.to_thread(self._close)

    def _step(self) -> bool:
        """One attempt (or, while leading, one check); True if this process leads."""
        try:
            connection = self._connection or self._connect()
            if self.leading:
                connection.execute(text("SELECT 1"))
                return True
            return bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
            )
        except SQLAlchemyError as exc:
            self._drop(str(exc).splitlines()[0])
            return False

    def _connect(self) -> Connection:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        for setting, value in SESSION_KEEPALIVE.items():  # SET takes no bound parameters
            connection.execute(text(f"SET {setting} = {value}"))
        row = connection.execute(text("SELECT current_database(), current_schema()")).one()
        self._key = lock_key(str(row[0]), str(row[1]))
        self._connection = connection
        return connection

    def _drop(self, why: str) -> None:
        connection, self._connection = self._connection, None
        if self.leading:
            logger.warning("lost the scheduling lock: %s", why)
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()

    def _set(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        if leading:
            logger.info("this replica leads: it schedules suites, streams and alert timers")
        else:
            logger.warning("this replica no longer leads: scheduling stopped")
        self._on_change(leading)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                connection.close()  # the session ends: PostgreSQL releases the lock
        self._engine.dispose()


class SingleInstance:
    """The SQLite store's process lock: ``acquire()`` or ``StartupError``."""

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        self._url = url
        self._path = (
            None
            if not database or database == ":memory:"
            else Path(database).expanduser().with_name(Path(database).name + ".lock")
        )
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StartupError(
                f"store {redact_url(self._url)} is in use by another monitor daemon (pid "
                f"{holder}): SQLite serves one daemon only; to run several replicas, give "
                "them a PostgreSQL [store] url"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing the file releases the flock


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"
