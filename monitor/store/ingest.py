"""The write path of ingest: idempotent batch appends, and one writer queue on SQLite.

SQLite has one write lock per file. Eight clients posting batches while suites store
their results is eight threads racing for it, and the busy handler is not fair: one of
them can wait past its timeout and fail with "database is locked". So on SQLite every
ingest write goes through one ``IngestWriter``: a batch joins a queue, and whichever
thread holds the writer drains the whole queue in one transaction (a group commit).
Only one ingest connection ever competes with the daemon's own writers, a group costs
one commit, and a lock still held past the busy timeout is retried, then answered as
``StoreBusy`` (a 503 with ``Retry-After``), never as a bare error. PostgreSQL has row
locks and keeps concurrent writes; appenders of one stream are serialised there by a
transaction-scoped advisory lock.

An ``Idempotency-Key`` is kept per stream with the answer its batch got and a
fingerprint of the body: the same key and body again is answered from the key row, a
different body under a used key is refused, and keys expire after ``key_ttl``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select

from monitor.errors import StoreBusy, StoreError
from monitor.store.shadow import upsert_predictions
from monitor.store.tables import ingest_keys, stream_batches

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = [
    "DEFAULT_KEY_TTL",
    "Appended",
    "IngestWriter",
    "KeyReused",
    "PendingBatch",
    "append",
]

T = TypeVar("T")

DEFAULT_KEY_TTL = timedelta(hours=24)
"""How long an ``Idempotency-Key`` guards against a retry (the window clients retry in)."""

MAX_GROUP = 64
"""Most batches one group commit writes; the rest wait for the next."""


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A validated batch waiting to be stored, with its idempotency key if it has one."""

    stream: str
    received_at: datetime
    first_ts: datetime
    last_ts: datetime
    n_rows: int
    payload: bytes
    key: str | None = None
    fingerprint: str | None = None
    predictions: tuple[tuple[str, str | None], ...] = ()
    """A shadow stream's ``(record_id, prediction)`` pairs, stored with the batch."""


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a batch was stored; ``replayed`` when a retry was answered from its key."""

    batch_id: int
    first_row: int
    n_rows: int
    replayed: bool = False


class KeyReused(StoreError):
    """An idempotency key already used for a different body of the same stream."""


def append(connection: Connection, batch: PendingBatch, *, key_ttl: timedelta) -> Appended:
    """Store ``batch`` after its stream's last row, or answer it from its key.

    The key check and the append share the transaction and, on PostgreSQL, the stream's
    advisory lock, so two requests with one key store one batch however they interleave;
    the unique (stream, first_row) index catches any overlap of row numbers.
    """
    if connection.dialect.name == "postgresql":
        # The same lock as drift.append_batch: appenders of a stream take turns.
        lock = func.pg_advisory_xact_lock(func.hashtext(f"stream:{batch.stream}"))
        connection.execute(select(lock))
    if batch.key is not None:
        previous = _previous(connection, batch, key_ttl)
        if previous is not None:
            return previous
    first_row = _next_row(connection, batch.stream)
    result = connection.execute(
        _INSERT_BATCH,
        {
            "stream": batch.stream,
            "received_at": batch.received_at,
            "first_ts": batch.first_ts,
            "last_ts": batch.last_ts,
            "first_row": first_row,
            "n_rows": batch.n_rows,
            "payload": batch.payload,
        },
    )
    batch_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if not isinstance(batch_id, int):
        raise StoreError(f"inserting a batch into stream {batch.stream!r} returned no id")
    if batch.predictions:
        upsert_predictions(connection, batch.stream, batch.predictions, at=batch.received_at)
    if batch.key is not None:
        connection.execute(
            insert(ingest_keys).values(
                stream=batch.stream,
                key=batch.key,
                fingerprint=batch.fingerprint or "",
                batch_id=batch_id,
                first_row=first_row,
                n_rows=batch.n_rows,
                created_at=batch.received_at,
            )
        )
    return Appended(batch_id, first_row, batch.n_rows)


# Built once: constructing a statement costs more than running it on a small batch.
_INSERT_BATCH = insert(stream_batches)
_LAST_BATCH = (
    select(stream_batches.c.first_row, stream_batches.c.n_rows)
    .where(stream_batches.c.stream == bindparam("stream"))
    .order_by(stream_batches.c.first_row.desc())
    .limit(1)
)


def _next_row(connection: Connection, stream: str) -> int:
    """The row number after the stream's last batch: one seek on the unique (stream,
    first_row) index, where ``max(first_row + n_rows)`` would read every batch."""
    last = connection.execute(_LAST_BATCH, {"stream": stream}).one_or_none()
    return 0 if last is None else int(last.first_row + last.n_rows)


def _previous(connection: Connection, batch: PendingBatch, key_ttl: timedelta) -> Appended | None:
    expired = batch.received_at - key_ttl
    connection.execute(
        delete(ingest_keys).where(
            ingest_keys.c.stream == batch.stream, ingest_keys.c.created_at < expired
        )
    )
    row = connection.execute(
        select(ingest_keys).where(
            ingest_keys.c.stream == batch.stream, ingest_keys.c.key == batch.key
        )
    ).one_or_none()
    if row is None:
        return None
    if row.fingerprint != batch.fingerprint:
        raise KeyReused(
            f"Idempotency-Key {batch.key!r} was used for a different batch of stream "
            f"{batch.stream!r} at {row.created_at.isoformat()}"
        )
    return Appended(row.batch_id, row.first_row, row.n_rows, replayed=True)


def count_keys(connection: Connection, stream: str) -> int:
    """Keys kept for ``stream`` (for tests and diagnostics)."""
    return int(
        connection.scalar(
            select(func.count()).select_from(ingest_keys).where(ingest_keys.c.stream == stream)
        )
        or 0
    )


@dataclass(slots=True)
class _Job:
    batch: PendingBatch
    result: Appended | None = None
    error: Exception | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class IngestWriter:
    """Stores ingest batches: through one group-committing writer on SQLite, directly
    (concurrently) on PostgreSQL. ``append`` blocks; call it from a worker thread.

    ``busy_retry`` is how long a group keeps retrying a database that stays locked
    before its batches fail with ``StoreBusy``.
    """

    def __init__(
        self,
        store: Store,
        *,
        key_ttl: timedelta = DEFAULT_KEY_TTL,
        busy_retry: timedelta = timedelta(seconds=30),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._key_ttl = key_ttl
        self._busy_retry = busy_retry.total_seconds()
        self._sleep = sleep
        self.serial = store.engine.dialect.name == "sqlite"
        self._writer = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []

    def append(self, batch: PendingBatch) -> Appended:
        """Store ``batch`` (or answer it from its key); raises ``KeyReused``, ``StoreBusy``
        or ``StoreError``."""
        if not self.serial:
            return self._store.streams.append_pending([batch], key_ttl=self._key_ttl)[0]
        job = _Job(batch)
        with self._queue_lock:
            self._queue.append(job)
        with self._writer:
            # Whoever held the writer before may have stored this job in its group.
            while not job.done:
                with self._queue_lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._run(group)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def write(self, write: Callable[[], T]) -> T:
        """Run another ingest write (labels) as the writer, retried while SQLite stays
        locked like a group; on PostgreSQL it just runs."""
        if not self.serial:
            return write()
        with self._writer:
            return self._retrying(write)

    def _run(self, group: Sequence[_Job]) -> None:
        """Store ``group`` in one transaction and give every job its outcome; no job of
        it may be left without one, or its thread would wait for it forever."""
        batches = [job.batch for job in group]
        try:
            results = self._retrying(
                lambda: self._store.streams.append_pending(batches, key_ttl=self._key_ttl)
            )
        except Exception as exc:  # handed to the jobs' own threads, which raise it
            if len(group) == 1 or isinstance(exc, StoreBusy):
                for job in group:
                    job.error = exc
                return
            # One batch spoils the group's transaction: store each alone to find it.
            for job in group:
                self._run([job])
            return
        for job, result in zip(group, results, strict=True):
            job.result = result

    def _retrying(self, write: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_retry
        delay = 0.05
        while True:
            try:
                return write()
            except StoreBusy:
                if time.monotonic() + delay > deadline:
                    raise
            self._sleep(delay)
            delay = min(delay * 2, 1.0)
