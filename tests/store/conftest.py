"""Fixtures for the store contract suite: every test runs on SQLite and on PostgreSQL.

SQLite gets a fresh file under ``tmp_path``. PostgreSQL gets a fresh schema in the
database named by ``MONITOR_TEST_POSTGRES_URL`` (reached through ``search_path``, so the
store needs no schema awareness), dropped afterwards. Without that variable the PostgreSQL
variants skip; they are marked ``integration``, which CI refuses to skip.

Every store handed out is checked for leaked connections when the test ends.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store

POSTGRES_ENV = "MONITOR_TEST_POSTGRES_URL"

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
"""A fixed clock: tests state times relative to it, never read the real clock."""

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.integration),
]


def postgres_base_url() -> str:
    """The server URL for integration tests, or skip the test with the reason."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"{POSTGRES_ENV} is not set; PostgreSQL store tests need a server, "
            "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    return url


def _postgres_schema_url() -> Iterator[str]:
    base = make_url(postgres_base_url()).set(drivername="postgresql+psycopg")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        # A missing parent directory on purpose: the engine must create it.
        yield f"sqlite:///{tmp_path / 'state' / 'monitor.db'}"
    else:
        yield from _postgres_schema_url()


def _closing(store: Store) -> Iterator[Store]:
    yield store
    pool = store.engine.pool
    assert isinstance(pool, QueuePool), f"expected a QueuePool, got {type(pool).__name__}"
    leaked = pool.checkedout()
    store.close()
    assert leaked == 0, f"{leaked} connection(s) still checked out after the test"


@pytest.fixture
def bare_store(store_url: str) -> Iterator[Store]:
    """A store on an empty, never-migrated database."""
    yield from _closing(Store(store_url))


@pytest.fixture
def store(bare_store: Store) -> Store:
    """A store migrated to head."""
    bare_store.upgrade()
    return bare_store


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "monitor.db"


@pytest.fixture
def sqlite_store(sqlite_path: Path) -> Iterator[Store]:
    """A migrated SQLite store, for tests of SQLite's locking behaviour."""
    store = Store(f"sqlite:///{sqlite_path}")
    store.upgrade()
    yield from _closing(store)


StartRun = Callable[..., int]


@pytest.fixture
def start_run(store: Store) -> StartRun:
    """Create a running run with sensible defaults; keywords override them."""

    def start(suite: str = "qa", model: str = "prod", *, at: datetime = T0) -> int:
        return store.runs.create_run(
            suite=suite,
            model=model,
            trigger="schedule",
            dataset_sha256="d" * 64,
            config_hash="c" * 64,
            at=at,
        )

    return start


@pytest.fixture
def add_run(store: Store, start_run: StartRun) -> StartRun:
    """Create a run and finish it with ``status`` and ``metrics`` ({name: value})."""

    def add(
        suite: str = "qa",
        model: str = "prod",
        *,
        status: RunStatus = RunStatus.SUCCEEDED,
        metrics: dict[str, float] | None = None,
        at: datetime = T0,
        seconds: float = 10.0,
    ) -> int:
        run_id = start_run(suite, model, at=at)
        values = [
            # A +-0.25 interval: exact in binary, so tests can compare with ==.
            MetricValue(name, value, value - 0.25, value + 0.25, 10)
            for name, value in (metrics or {}).items()
        ]
        store.runs.finish_run(
            run_id, status=status, at=at + timedelta(seconds=seconds), metrics=values
        )
        return run_id

    return add


def _make_cases(count: int, *, prefix: str = "case", errors: int = 0) -> list[CaseResult]:
    """``count`` cases with JSON-rich fields; the last ``errors`` of them failed."""
    cases = []
    for index in range(count):
        failed = index >= count - errors
        cases.append(
            CaseResult(
                case_id=f"{prefix}-{index:04d}",
                input={"question": f"q{index} ✓", "context": ["a", 1, None, {"k": 2.5}]},
                expected=[f"answer {index}"],
                prediction=None if failed else f"answer {index}",
                scores={} if failed else {"exact_match": 1.0, "f1": 0.5},
                latency_seconds=None if failed else 0.25,
                error_kind="timeout" if failed else None,
                error="read timed out after 30s" if failed else None,
            )
        )
    return cases


MakeCases = Callable[..., list[CaseResult]]


@pytest.fixture
def make_cases() -> MakeCases:
    """``make_cases(count, prefix=..., errors=...)``: case results to finish a run with."""
    return _make_cases
