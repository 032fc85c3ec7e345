"""Schema, migrations, readiness and column types, on every backend."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.synchronize import Barrier as BarrierType
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError, StatementError

from monitor.errors import StoreError
from monitor.store import Store, create_store_engine, redact_url
from monitor.store.tables import baselines, metadata, models
from monitor.store.types import UTCDateTime
from tests.servers import deadline

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TABLES = {
    "models",
    "suites",
    "runs",
    "run_metrics",
    "case_results",
    "baselines",
    "alert_states",
    "alert_history",
    "alert_outbox",
    "alert_silences",
    "stream_batches",
    "stream_labels",
    "drift_profiles",
    "drift_reports",
}


def test_upgrade_creates_every_table_at_head(bare_store: Store) -> None:
    assert bare_store.current_revision() is None

    bare_store.upgrade()

    assert bare_store.current_revision() == bare_store.head_revision()
    assert set(inspect(bare_store.engine).get_table_names()) >= TABLES
    assert bare_store.check_ready() is None


def test_upgrade_is_idempotent_and_keeps_data(store: Store, start_run: Callable[..., int]) -> None:
    run_id = start_run()

    store.upgrade()

    assert store.current_revision() == store.head_revision()
    assert store.runs.get_run(run_id) is not None


def test_migrated_schema_matches_tables_module(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


_replica_barrier: BarrierType | None = None


def _start_replica(barrier: BarrierType) -> None:
    global _replica_barrier
    _replica_barrier = barrier


def _upgrade_as_replica(url: str) -> str | None:
    """In a child process: wait for every replica, then upgrade at the same moment."""
    assert _replica_barrier is not None
    store = Store(url)
    try:
        _replica_barrier.wait()
        store.upgrade()
        return store.current_revision()
    finally:
        store.close()


def test_concurrent_upgrades_from_several_replicas(bare_store: Store, store_url: str) -> None:
    # Separate processes, as real replicas are: they share nothing but the database.
    context = multiprocessing.get_context("spawn")
    replicas = 3
    barrier = context.Barrier(replicas, timeout=deadline(120))
    with ProcessPoolExecutor(
        replicas, mp_context=context, initializer=_start_replica, initargs=(barrier,)
    ) as pool:
        revisions = list(pool.map(_upgrade_as_replica, [store_url] * replicas))

    assert revisions == [bare_store.head_revision()] * replicas
    assert bare_store.check_ready() is None


def test_check_ready_before_upgrade_names_the_command(bare_store: Store) -> None:
    reason = bare_store.check_ready()

    head = bare_store.head_revision()
    assert reason == f"migrations not at head (current none, head {head}); run 'monitor db upgrade'"


@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda tmp: f"sqlite:///{tmp}", id="sqlite-path-is-a-directory"),
        pytest.param(
            lambda tmp: "postgresql://monitor:s3cret-pw@127.0.0.1:1/monitor",
            id="postgresql-closed-port",
        ),
    ],
)
def test_check_ready_reports_unreachable_without_password(
    make_url: Callable[[Path], str], tmp_path: Path
) -> None:
    store = Store(make_url(tmp_path))
    try:
        reason = store.check_ready()
        assert reason is not None
        assert reason.startswith("store unreachable: OperationalError: ")
        assert "s3cret-pw" not in reason
        assert "s3cret-pw" not in repr(store)
        with pytest.raises(StoreError, match="reading run 1") as info:
            store.runs.get_run(1)
        assert "s3cret-pw" not in str(info.value)
    finally:
        store.close()


def test_redact_url_hides_the_password() -> None:
    redacted = redact_url("postgresql+psycopg://monitor:s3cret-pw@db:5432/monitor")

    assert redacted == "postgresql+psycopg://monitor:***@db:5432/monitor"
    assert redact_url("not a url") == "<unparseable database url>"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg_3(scheme: str) -> None:
    engine = create_store_engine(f"{scheme}://monitor:pw@db.invalid/monitor")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [pytest.param("mysql://u@h/db", id="unsupported"), pytest.param("::", id="malformed")],
)
def test_unsupported_urls_raise_store_error(url: str) -> None:
    with pytest.raises(StoreError, match="store url"):
        create_store_engine(url)


def test_timestamps_round_trip_as_utc(store: Store, start_run: Callable[..., int]) -> None:
    local = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))

    run = store.runs.get_run(start_run(at=local))

    assert run is not None
    assert run.created_at == local
    assert run.created_at.tzinfo is UTC
    assert run.created_at.hour == 12
    assert run.started_at == local


def test_naive_datetimes_are_refused(store: Store) -> None:
    naive = datetime(2024, 5, 1, 12, 0)

    with pytest.raises(ValueError, match="timezone-aware"):
        store.runs.create_run(
            suite="qa",
            model="prod",
            trigger="manual",
            dataset_sha256="d",
            config_hash="c",
            at=naive,
        )
    row = {"name": "m", "adapter": "openai", "url": "u", "role": "production", "config_hash": "h"}
    with pytest.raises(StatementError) as info, store.engine.begin() as connection:
        connection.execute(insert(models).values(**row, updated_at=naive))
    assert isinstance(info.value.orig, ValueError)
    assert store.runs.list_runs() == []


def test_utc_datetime_type_refuses_naive_values() -> None:
    column_type = UTCDateTime()
    dialect = sqlite.dialect()

    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2024, 1, 1), dialect)
    assert column_type.process_result_value(datetime(2024, 1, 1), dialect) == datetime(
        2024, 1, 1, tzinfo=UTC
    )


def test_baselines_reject_an_unknown_run(store: Store, start_run: Callable[..., int]) -> None:
    run_id = start_run()
    baseline = {
        "suite": "qa",
        "model": "prod",
        "promoted_at": T0,
        "promoted_by": "alice",
        "reason": "first good run",
        "active": True,
    }
    with store.engine.begin() as connection:
        connection.execute(insert(baselines).values(**baseline, run_id=run_id))

    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(baselines).values(**baseline, run_id=run_id + 1000))

    with store.engine.connect() as connection:
        assert connection.scalars(select(baselines.c.run_id)).all() == [run_id]
