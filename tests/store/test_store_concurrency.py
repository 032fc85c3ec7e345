"""Several threads sharing one store, and SQLite's locking as the store configures it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store
from monitor.store.engine import write_engine
from monitor.store.tables import runs
from tests.servers import deadline

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
THREADS = 4
RUNS_PER_THREAD = 3
CASES_PER_RUN = 200

MakeCases = Callable[..., list[CaseResult]]


def test_concurrent_writers_all_succeed(store: Store, make_cases: MakeCases) -> None:
    barrier = threading.Barrier(THREADS, timeout=deadline(60))

    def worker(index: int) -> list[int]:
        barrier.wait()
        finished = []
        for round_ in range(RUNS_PER_THREAD):
            run_id = store.runs.create_run(
                suite=f"suite-{index}",
                model="prod",
                trigger="schedule",
                dataset_sha256="d",
                config_hash="c",
                at=T0,
            )
            store.runs.list_runs(limit=5)  # readers interleave with the writers
            store.runs.finish_run(
                run_id,
                status=RunStatus.SUCCEEDED,
                at=T0 + timedelta(seconds=round_ + 1),
                cases=make_cases(CASES_PER_RUN, prefix=f"w{index}"),
                metrics=[MetricValue("exact_match", 1.0, 0.98, 1.0, CASES_PER_RUN)],
            )
            finished.append(run_id)
        return finished

    with ThreadPoolExecutor(THREADS) as pool:
        run_ids = [run_id for ids in pool.map(worker, range(THREADS)) for run_id in ids]

    assert len(set(run_ids)) == THREADS * RUNS_PER_THREAD
    listed = store.runs.list_runs(limit=100)
    assert sorted(run.id for run in listed) == sorted(run_ids)
    assert {(run.status, run.n_cases) for run in listed} == {(RunStatus.SUCCEEDED, CASES_PER_RUN)}
    assert len(store.runs.list_cases(run_ids[0], limit=1000)) == CASES_PER_RUN


@pytest.fixture
def raw_sqlite(sqlite_path: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain sqlite3 connection that never waits for a lock."""
    with closing(sqlite3.connect(sqlite_path, timeout=0, isolation_level=None)) as connection:
        yield connection


def _can_take_write_lock(connection: sqlite3.Connection) -> bool:
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "database is locked" not in str(exc):
            raise
        return False
    connection.execute("ROLLBACK")
    return True


def test_sqlite_writes_take_the_write_lock_at_begin(
    sqlite_store: Store, raw_sqlite: sqlite3.Connection
) -> None:
    with write_engine(sqlite_store.engine).begin():
        # No statement yet: BEGIN IMMEDIATE alone must hold the write lock.
        assert not _can_take_write_lock(raw_sqlite)

    assert _can_take_write_lock(raw_sqlite)


def test_sqlite_reads_do_not_block_writers(
    sqlite_store: Store, raw_sqlite: sqlite3.Connection
) -> None:
    with sqlite_store.engine.connect() as connection:
        connection.execute(select(runs.c.id)).all()
        assert connection.in_transaction()

        assert _can_take_write_lock(raw_sqlite)


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        pytest.param("journal_mode", "wal", id="wal"),
        pytest.param("busy_timeout", 5000, id="busy-timeout"),
        pytest.param("foreign_keys", 1, id="foreign-keys"),
    ],
)
def test_sqlite_connection_pragmas(sqlite_store: Store, pragma: str, expected: object) -> None:
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(text(f"PRAGMA {pragma}")).scalar() == expected


def test_sqlite_busy_timeout_is_configurable(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout_ms=250)
    try:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 250
    finally:
        store.close()


def test_store_from_engine_shares_the_engine(sqlite_store: Store) -> None:
    adopted = Store.from_engine(sqlite_store.engine)

    assert adopted.engine is sqlite_store.engine
    assert adopted.check_ready() is None
