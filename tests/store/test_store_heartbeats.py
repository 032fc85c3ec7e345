"""Run heartbeats and the sweep for abandoned runs, the replayed batch, the migration that
adds the heartbeat, and how an unreachable store is told apart from a refusal: on every
backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from monitor.errors import StoreError, StoreUnavailable
from monitor.records import CaseResult, RunStatus
from monitor.store import Store, migrate
from monitor.store.store import unreachable
from monitor.store.tables import runs
from tests.store.conftest import postgres_base_url

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(minutes=1)

StartRun = Callable[..., int]
MakeCases = Callable[..., list[CaseResult]]


def heartbeat(store: Store, run_id: int) -> datetime | None:
    with store.engine.connect() as connection:
        value: datetime | None = connection.scalar(
            select(runs.c.heartbeat_at).where(runs.c.id == run_id)
        )
        return value


def status(store: Store, run_id: int) -> tuple[RunStatus, str | None]:
    run = store.runs.get_run(run_id)
    assert run is not None
    return run.status, run.error


def test_new_and_started_runs_beat_from_their_start(store: Store, start_run: StartRun) -> None:
    running = start_run(at=T0)
    queued = store.runs.create_run(
        suite="qa",
        model="prod",
        trigger="api",
        dataset_sha256="",
        config_hash="c",
        at=T0,
        status=RunStatus.QUEUED,
        heartbeat_at=T0 + timedelta(hours=1),
    )
    assert heartbeat(store, running) == T0
    assert heartbeat(store, queued) == T0 + timedelta(hours=1)  # a late slot: alive now
    store.runs.start_run(queued, dataset_sha256="d", config_hash="c", at=T0 + timedelta(hours=2))
    assert heartbeat(store, queued) == T0 + timedelta(hours=2)


def test_touch_refreshes_only_unfinished_runs(store: Store, start_run: StartRun) -> None:
    live, done = start_run(at=T0), start_run(at=T0)
    store.runs.finish_run(done, status=RunStatus.SUCCEEDED, at=T0)
    later = T0 + timedelta(seconds=30)

    assert store.runs.touch_runs([live, done, 999], at=later) == [live]
    assert (heartbeat(store, live), heartbeat(store, done)) == (later, T0)
    assert store.runs.touch_runs([], at=later) == []


def test_sweep_takes_stale_runs_and_spares_fresh_ones(store: Store, start_run: StartRun) -> None:
    dead, alive, finished = start_run(at=T0), start_run(at=T0), start_run(at=T0)
    store.runs.finish_run(finished, status=RunStatus.FAILED, at=T0, error="boom")
    now = T0 + timedelta(minutes=5)
    store.runs.touch_runs([alive], at=now - timedelta(seconds=59))

    swept = store.runs.interrupt_stale(before=now - STALE, reason="abandoned", at=now)

    assert swept == [dead]
    assert status(store, dead) == (RunStatus.INTERRUPTED, "abandoned")
    assert status(store, alive) == (RunStatus.RUNNING, None)
    assert status(store, finished) == (RunStatus.FAILED, "boom")
    run = store.runs.get_run(dead)
    assert run is not None and run.finished_at == now
    # A swept run takes no more results: its owner learns it is over.
    with pytest.raises(StoreError, match="interrupted, not running"):
        store.runs.append_cases(dead, [])
    assert store.runs.interrupt_stale(before=now, reason="again", at=now) == [alive]


def test_a_replayed_batch_skips_the_cases_already_stored(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = make_cases(4)
    store.runs.append_cases(run_id, cases[:2])  # committed, but the answer was lost

    with pytest.raises(StoreError):
        store.runs.append_cases(run_id, cases)  # sent again as new: the primary key refuses
    store.runs.append_cases(run_id, cases, replay=True)

    assert [c.case_id for c in store.runs.list_cases(run_id)] == [c.case_id for c in cases]


def test_migration_0009_gives_unfinished_runs_a_heartbeat(bare_store: Store) -> None:
    migrate.upgrade(bare_store.engine, "0007")
    insert = text(
        "INSERT INTO runs (suite, model, status, trigger, created_at, started_at,"
        " dataset_sha256, config_hash, n_cases, n_errors)"
        " VALUES ('qa', 'prod', :status, 'schedule', :created, :started, 'd', 'c', 0, 0)"
        " RETURNING id"
    )
    started = T0 + timedelta(seconds=5)
    with bare_store.engine.begin() as connection:
        ids = {
            name: connection.execute(
                insert, {"status": name, "created": T0, "started": at}
            ).scalar_one()
            for name, at in (("running", started), ("queued", None), ("succeeded", started))
        }

    bare_store.upgrade()

    assert bare_store.current_revision() == bare_store.head_revision()
    assert heartbeat(bare_store, ids["running"]) == started
    assert heartbeat(bare_store, ids["queued"]) == T0
    assert heartbeat(bare_store, ids["succeeded"]) is None
    now = T0 + timedelta(minutes=3)
    swept = bare_store.runs.interrupt_stale(before=now - STALE, reason="old", at=now)
    assert swept == sorted([ids["running"], ids["queued"]])


@pytest.mark.integration
def test_a_refused_connection_raises_store_unavailable() -> None:
    postgres_base_url()  # skips without a server: the refusal below is the point
    store = Store("postgresql://postgres@127.0.0.1:1/test")  # nothing listens on port 1
    try:
        with pytest.raises(StoreUnavailable, match="creating a run"):
            store.runs.create_run(
                suite="qa", model="m", trigger="t", dataset_sha256="", config_hash="", at=T0
            )
    finally:
        store.close()


def test_a_refusal_is_not_unavailable() -> None:
    refused = IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not unreachable(refused)
    locked = OperationalError("BEGIN", {}, _sqlite_error("database is locked"))
    missing = OperationalError("SELECT", {}, _sqlite_error("no such table: runs"))
    assert unreachable(locked) and not unreachable(missing)


def _sqlite_error(message: str) -> Exception:
    import sqlite3

    return sqlite3.OperationalError(message)


def test_a_connection_dropped_inside_a_transaction_counts_as_unreachable() -> None:
    """After a drop mid-transaction SQLAlchemy raises PendingRollbackError on the way out
    (seen in CI when the store went away during alert evaluation): transient, like the drop."""
    from sqlalchemy.exc import IntegrityError, PendingRollbackError

    from monitor.store.store import unreachable

    assert unreachable(
        PendingRollbackError("Can't reconnect until invalid transaction is rolled back")
    )
    assert not unreachable(IntegrityError("INSERT", {}, Exception("duplicate key")))
