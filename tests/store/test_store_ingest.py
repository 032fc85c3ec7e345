"""The ingest write path on both backends: idempotency keys store a batch once, a key
reused for another body is refused with nothing stored, keys expire; on SQLite one
group-committing writer serves many threads, and a lock that outlasts every retry is
``StoreBusy``, never a raw driver error."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from monitor.errors import StoreBusy
from monitor.store import Store, migrate
from monitor.store.ingest import IngestWriter, KeyReused, PendingBatch, _Job, count_keys
from tests.store.conftest import T0

TTL = timedelta(hours=24)


def batch(
    n_rows: int = 10, *, key: str | None = None, body: str = "a", at_s: float = 0
) -> PendingBatch:
    at = T0 + timedelta(seconds=at_s)
    return PendingBatch(
        "s",
        received_at=at,
        first_ts=at,
        last_ts=at,
        n_rows=n_rows,
        payload=b"arrow",
        key=key,
        fingerprint=None if key is None else f"sha-{body}",
    )


def test_same_key_and_body_is_stored_once(store: Store) -> None:
    (first,) = store.streams.append_pending([batch(key="k1")], key_ttl=TTL)
    (again,) = store.streams.append_pending([batch(key="k1", at_s=5)], key_ttl=TTL)
    (other,) = store.streams.append_pending([batch(key="k2")], key_ttl=TTL)
    assert not first.replayed and again.replayed
    assert (again.batch_id, again.first_row, again.n_rows) == (first.batch_id, 0, 10)
    assert other.first_row == 10
    assert [b.n_rows for b in store.streams.batches_for_rows("s", 0, 100)] == [10, 10]


def test_a_key_reused_for_another_body_stores_nothing(store: Store) -> None:
    store.streams.append_pending([batch(key="k1")], key_ttl=TTL)
    with pytest.raises(KeyReused, match="'k1' was used for a different batch"):
        store.streams.append_pending([batch(key=None), batch(key="k1", body="b")], key_ttl=TTL)
    # The unkeyed batch of the refused call was rolled back with it.
    assert len(store.streams.batches_for_rows("s", 0, 100)) == 1


def test_the_same_key_twice_in_one_group_is_stored_once(store: Store) -> None:
    one, two = store.streams.append_pending([batch(key="k"), batch(key="k")], key_ttl=TTL)
    assert two.replayed and two.batch_id == one.batch_id
    assert len(store.streams.batches_for_rows("s", 0, 100)) == 1


def test_keys_expire_after_their_ttl(store: Store) -> None:
    store.streams.append_pending([batch(key="k1")], key_ttl=TTL)
    late = 24 * 3600 + 1
    (again,) = store.streams.append_pending([batch(key="k1", body="b", at_s=late)], key_ttl=TTL)
    assert not again.replayed and again.first_row == 10
    with store.engine.connect() as connection:
        assert count_keys(connection, "s") == 1  # the expired one was dropped


def test_concurrent_writers_store_every_batch_once(store: Store) -> None:
    """16 threads x 10 batches (every batch sent twice under its key) through one writer:
    row numbers are contiguous and nothing is stored twice, on either backend."""
    writer = IngestWriter(store)

    def send(thread: int) -> list[int]:
        firsts = []
        for i in range(10):
            for _ in range(2):
                appended = writer.append(batch(3, key=f"{thread}-{i}", body=f"{thread}-{i}"))
            firsts.append(appended.first_row)
        return firsts

    with ThreadPoolExecutor(16) as pool:
        firsts = sorted(f for fs in pool.map(send, range(16)) for f in fs)
    assert firsts == list(range(0, 16 * 10 * 3, 3))
    stored = store.streams.batches_for_rows("s", 0, 10**6)
    assert len(stored) == 160 and sorted(b.first_row for b in stored) == firsts


def test_a_held_sqlite_lock_is_store_busy_then_clears(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    store = Store(f"sqlite:///{path}", busy_timeout_ms=50)
    store.upgrade()
    writer = IngestWriter(store, busy_retry=timedelta(milliseconds=200))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy, match="locked"):
            writer.append(batch(key="k"))
        holder.execute("ROLLBACK")
        assert not writer.append(batch(key="k")).replayed  # the refused try left no key
        assert len(store.streams.batches_for_rows("s", 0, 100)) == 1
    finally:
        holder.close()
        store.close()


def test_a_bad_batch_in_a_group_fails_alone(sqlite_store: Store) -> None:
    """A group holding a batch the store refuses (here: naive times) is stored batch by
    batch, so only that batch fails and every other caller gets its answer."""
    writer = IngestWriter(sqlite_store)
    good = batch(key="good")
    bad = PendingBatch("s", T0.replace(tzinfo=None), T0, T0, 1, b"x")
    jobs = [_Job(good), _Job(bad), _Job(batch())]
    writer._run(jobs)
    assert jobs[0].result is not None and jobs[2].result is not None
    assert isinstance(jobs[1].error, ValueError)
    assert len(sqlite_store.streams.batches_for_rows("s", 0, 100)) == 2


def test_migration_0011_adds_ingest_keys_and_downgrades(bare_store: Store) -> None:
    """From 0007 with a batch stored, up to head and back: the batch stays, the key
    table comes and goes."""
    migrate.upgrade(bare_store.engine, "0007")
    bare_store.streams.append_batch(
        "s", received_at=T0, first_ts=T0, last_ts=T0, n_rows=2, payload=b"x"
    )
    assert "ingest_keys" not in inspect(bare_store.engine).get_table_names()
    bare_store.upgrade()
    assert "ingest_keys" in inspect(bare_store.engine).get_table_names()
    (appended,) = bare_store.streams.append_pending([batch(key="k")], key_ttl=TTL)
    assert appended.first_row == 2
    with bare_store.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0007")
    assert "ingest_keys" not in inspect(bare_store.engine).get_table_names()
    assert len(bare_store.streams.batches_for_rows("s", 0, 100)) == 2
