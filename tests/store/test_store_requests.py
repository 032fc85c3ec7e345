"""Queued runs and API run requests, and migration 0005 that adds them, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from monitor.errors import StoreError
from monitor.records import MetricValue, Run, RunStatus
from monitor.store import Store, migrate
from monitor.store.requests import QueuedRun
from monitor.store.tables import baselines, run_requests, runs

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
MODELS = [{"id": "prod", "model": "prod", "endpoint": None}]


def request(store: Store, request_id: str = "req-1", *names: str) -> list[int]:
    names = names or ("prod",)
    return store.runs.create_run_request(
        request_id=request_id,
        suite="qa",
        models=[{"id": n, "model": n, "endpoint": None} for n in names],
        sample=5,
        baseline="production",
        requested_by="ci",
        at=T0,
        runs=[QueuedRun(n, f"hash-{n}") for n in names],
    )


def get(store: Store, run_id: int) -> Run:
    run = store.runs.get_run(run_id)
    assert run is not None
    return run


def counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as connection:
        n_runs = connection.scalar(select(func.count()).select_from(runs))
        n_requests = connection.scalar(select(func.count()).select_from(run_requests))
    return int(n_runs or 0), int(n_requests or 0)


def test_request_and_its_queued_runs_are_stored_together(store: Store) -> None:
    ids = request(store, "req-1", "prod", "cand")

    found = store.runs.get_run_request("req-1")
    assert found is not None
    assert (found.suite, found.sample, found.baseline, found.requested_by) == (
        "qa",
        5,
        "production",
        "ci",
    )
    assert found.created_at == T0 and [r.id for r in found.runs] == ids
    assert found.models[1] == {"id": "cand", "model": "cand", "endpoint": None}
    for run, name in zip(found.runs, ("prod", "cand"), strict=True):
        assert run.status is RunStatus.QUEUED and run.model == name
        assert run.started_at is None and run.finished_at is None and run.operations is None
        assert run.request_id == "req-1" and run.trigger == "api"
        assert run.config_hash == f"hash-{name}" and run.dataset_sha256 == ""
    assert store.runs.get_run_request("req-2") is None


@pytest.mark.parametrize(
    ("request_id", "names", "message"),
    [
        pytest.param("12", ("prod",), "non-numeric", id="numeric-id"),
        pytest.param("", ("prod",), "non-numeric", id="empty-id"),
        pytest.param("req-x", ("prod", "prod"), "'prod' is asked for twice", id="model-twice"),
        pytest.param("req-x", (), "1 to 100 runs", id="no-runs"),
    ],
)
def test_bad_requests_store_nothing(
    store: Store, request_id: str, names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.runs.create_run_request(
            request_id=request_id,
            suite="qa",
            models=MODELS,
            sample=None,
            baseline=None,
            requested_by="ci",
            at=T0,
            runs=[QueuedRun(n, "h") for n in names],
        )
    assert counts(store) == (0, 0)


def test_a_failing_request_leaves_nothing_behind(store: Store) -> None:
    request(store, "req-1")
    with pytest.raises(StoreError, match="storing run request 'req-1'"):
        request(store, "req-1", "cand")  # the id is taken: no run of it may stay
    assert counts(store) == (1, 1)


def test_a_queued_run_starts_then_finishes(store: Store) -> None:
    (run_id,) = request(store)

    with pytest.raises(StoreError, match=f"run {run_id} is queued, not running"):
        store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1)
    store.runs.start_run(run_id, dataset_sha256="d" * 64, config_hash="c2", at=T1)
    started = get(store, run_id)
    assert started.status is RunStatus.RUNNING and started.started_at == T1
    assert started.dataset_sha256 == "d" * 64 and started.config_hash == "c2"
    with pytest.raises(StoreError, match=f"run {run_id} is running, not queued"):
        store.runs.start_run(run_id, dataset_sha256="d", config_hash="c", at=T1)
    with pytest.raises(StoreError, match="run 999 does not exist"):
        store.runs.start_run(999, dataset_sha256="d", config_hash="c", at=T1)
    metric = MetricValue("exact-match", 1.0, 0.5, 1.0, 2)
    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, metrics=[metric])
    assert get(store, run_id).status is RunStatus.SUCCEEDED


def test_create_run_queued_and_final_statuses_refused(store: Store) -> None:
    common = {"suite": "qa", "model": "m", "trigger": "t", "dataset_sha256": "", "at": T0}
    run_id = store.runs.create_run(**common, config_hash="c", status=RunStatus.QUEUED)
    assert get(store, run_id).status is RunStatus.QUEUED and get(store, run_id).started_at is None
    with pytest.raises(ValueError, match="queued or running"):
        store.runs.create_run(**common, config_hash="c", status=RunStatus.SUCCEEDED)
    with pytest.raises(ValueError, match="must be final"):
        store.runs.finish_run(run_id, status=RunStatus.QUEUED, at=T1)


def test_interrupt_covers_queued_and_running(store: Store) -> None:
    queued, running, done = request(store, "req-1", "a", "b", "c")
    store.runs.start_run(running, dataset_sha256="d", config_hash="c", at=T0)
    store.runs.start_run(done, dataset_sha256="d", config_hash="c", at=T0)
    store.runs.finish_run(done, status=RunStatus.FAILED, at=T1, error="boom")
    other = store.runs.create_run(
        suite="qa", model="x", trigger="schedule", dataset_sha256="d", config_hash="c", at=T0
    )

    assert store.runs.interrupt_running(reason="stopped", at=T1, run_ids=[queued, done]) == [queued]
    assert store.runs.interrupt_running(reason="crashed", at=T1) == [running, other]

    assert [(get(store, i).status, get(store, i).error) for i in (queued, running, done)] == [
        (RunStatus.INTERRUPTED, "stopped"),
        (RunStatus.INTERRUPTED, "crashed"),
        (RunStatus.FAILED, "boom"),
    ]


def test_queued_runs_are_not_finished_runs(store: Store) -> None:
    request(store)
    (summary,) = store.runs.run_summaries()
    assert summary.counts == {"queued": 1}
    assert summary.last_finished_at is None and summary.last_duration_seconds is None


def test_latest_scores_of_one_suite(store: Store) -> None:
    for suite, value in (("qa", 0.5), ("other", 0.25)):
        run_id = store.runs.create_run(
            suite=suite, model="m", trigger="t", dataset_sha256="d", config_hash="c", at=T0
        )
        store.runs.finish_run(
            run_id,
            status=RunStatus.SUCCEEDED,
            at=T1,
            metrics=[MetricValue("accuracy", value, None, None, 4)],
        )
    assert [(s.suite, s.value) for s in store.runs.latest_scores(suite="qa")] == [("qa", 0.5)]
    assert len(store.runs.latest_scores()) == 2


def test_schema_refuses_unknown_status_and_request(store: Store) -> None:
    row = {
        "suite": "qa",
        "model": "m",
        "trigger": "t",
        "created_at": T0,
        "dataset_sha256": "",
        "config_hash": "c",
        "n_cases": 0,
        "n_errors": 0,
    }
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(runs).values(**row, status="paused"))
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(runs).values(**row, status="queued", request_id="req-none"))
    assert counts(store) == (0, 0)


# -- migration 0005 ------------------------------------------------------------------


def _seed_at_0004(store: Store) -> int:
    """A run with a metric, a slice, a case and a baseline, written at revision 0004."""
    migrate.upgrade(store.engine, "0004")
    with store.engine.begin() as connection:
        run_id = connection.execute(
            text(
                "INSERT INTO runs (suite, model, status, trigger, created_at, started_at,"
                " finished_at, dataset_sha256, config_hash, n_cases, n_errors)"
                " VALUES ('qa', 'prod', 'succeeded', 'schedule', :t0, :t0, :t1, 'd', 'c', 1, 0)"
                " RETURNING id"
            ),
            {"t0": T0, "t1": T1},
        ).scalar_one()
        connection.execute(
            text("INSERT INTO run_metrics (run_id, name, value, n) VALUES (:r, 'acc', 0.75, 1)"),
            {"r": run_id},
        )
        connection.execute(
            text(
                "INSERT INTO run_slices (run_id, field, value, metric, score, n)"
                " VALUES (:r, 'lang', 'en', 'acc', 0.75, 1)"
            ),
            {"r": run_id},
        )
        connection.execute(
            text(
                "INSERT INTO case_results (run_id, case_id, input, expected, scores)"
                " VALUES (:r, 'k1', '{}', '\"a\"', '{}')"
            ),
            {"r": run_id},
        )
        connection.execute(
            insert(baselines).values(
                suite="qa",
                model="prod",
                run_id=run_id,
                promoted_at=T1,
                promoted_by="alice",
                reason="first",
                active=True,
            )
        )
    return int(run_id)


def test_migration_0005_keeps_every_row(bare_store: Store) -> None:
    run_id = _seed_at_0004(bare_store)

    bare_store.upgrade()

    assert bare_store.current_revision() == bare_store.head_revision()
    run = get(bare_store, run_id)
    assert run.status is RunStatus.SUCCEEDED and run.request_id is None
    assert [(m.name, m.value) for m in run.metrics] == [("acc", 0.75)]
    assert [(s.field, s.value) for s in run.slices] == [("lang", "en")]
    assert [c.case_id for c in bare_store.runs.list_cases(run_id)] == ["k1"]
    with bare_store.engine.connect() as connection:
        assert connection.scalars(select(baselines.c.run_id)).all() == [run_id]
    request(bare_store)  # the widened constraint takes queued runs
    # The recreated runs table still cascades to its children.
    with bare_store.engine.begin() as connection:
        connection.execute(baselines.delete())
        connection.execute(runs.delete().where(runs.c.id == run_id))
    assert bare_store.runs.list_cases(run_id) == [] and bare_store.runs.count_cases(run_id) == (
        0,
        0,
    )
    with bare_store.engine.connect() as connection:
        left = connection.scalar(text("SELECT count(*) FROM run_metrics"))
    assert left == 0 and bare_store.check_ready() is None


def test_sqlite_migrations_leave_foreign_keys_on(sqlite_path: Path) -> None:
    store = Store(f"sqlite:///{sqlite_path}")
    try:
        store.upgrade()
        assert store.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(StoreError):
            store.runs.append_cases(12345, [])  # no such run
    finally:
        store.close()


def test_sqlite_migration_refuses_dangling_rows(sqlite_path: Path) -> None:
    store = Store(f"sqlite:///{sqlite_path}")
    try:
        run_id = _seed_at_0004(store)
        with store.engine.connect() as connection:
            # A row referring to no run, as only a write with foreign keys off could leave.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
            with connection.begin():
                connection.execute(
                    text("INSERT INTO run_metrics (run_id, name, value, n) VALUES (:r, 'x', 1, 1)"),
                    {"r": run_id + 7},
                )
            driver.execute("PRAGMA foreign_keys=ON")
        with pytest.raises(StoreError, match="1 row\\(s\\) referring to missing rows"):
            store.upgrade()
        assert store.current_revision() == "0004"  # rolled back whole
    finally:
        store.close()


def test_ids_beyond_32_bits_name_no_run(store: Store) -> None:
    assert store.runs.get_run(2**31) is None and store.runs.get_run(10**20) is None
    assert store.runs.get_run(0) is None and store.runs.get_run(-1) is None
