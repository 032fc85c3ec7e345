"""``Store.write_generation`` moves on every committed write and only then (both backends)."""

from __future__ import annotations

from sqlalchemy import text

from monitor.store import Store
from tests.store.conftest import T0, StartRun


def test_reads_leave_it_and_writes_move_it(store: Store, start_run: StartRun) -> None:
    before = store.write_generation
    store.runs.list_runs()
    store.runs.run_summaries()
    assert store.check_ready() is None
    assert store.write_generation == before
    run_id = start_run(at=T0)
    after_start = store.write_generation
    assert after_start > before
    store.runs.get_run(run_id)
    assert store.write_generation == after_start


def test_a_rolled_back_write_leaves_it(store: Store) -> None:
    before = store.write_generation
    with store.engine.connect() as connection:
        connection.execute(text("DELETE FROM runs WHERE id = -1"))
        connection.rollback()
    assert store.write_generation == before


def test_it_is_shared_by_stores_on_one_engine(store: Store, start_run: StartRun) -> None:
    other = Store.from_engine(store.engine)
    before = other.write_generation
    start_run(at=T0)
    assert other.write_generation > before
