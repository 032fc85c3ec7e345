"""Every complete window judged exactly once, oldest first: the backlog after the newest
report, bounded by retention and ``backfill``, and refused to a second judge."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from monitor.config import StreamConfig
from monitor.errors import SourceError
from monitor.store import Store
from monitor.streams import sources
from monitor.streams.evaluate import StreamEvaluator
from monitor.streams.windows import Window
from tests.store.conftest import store_url  # noqa: F401  (the fixture, on both backends)
from tests.streams.conftest import MakeConfig, stream_table
from tests.streams.test_evaluate import T0, frame, ingest, write_reference

ROWS = {"rows": 100, "min_rows": 50}


@pytest.fixture(autouse=True)
def reference(tmp_path: Path, make_stream_config: MakeConfig) -> Path:
    # After make_stream_config, which writes an empty reference.csv.
    path = tmp_path / "reference.csv"
    write_reference(path, n=2000)
    return path


def row_stream(make_stream_config: MakeConfig, **window: int) -> StreamConfig:
    (stream,) = make_stream_config(stream_table(window={**ROWS, **window})).streams
    return stream


def ingest_windows(store: Store, stream: StreamConfig, count: int, *, seed: int = 0) -> None:
    """``count`` windows of 100 rows in batches of up to 40 (batches straddle windows)."""
    left, i = count * 100, 0
    while left:
        size = min(40, left)
        ingest(store, stream, frame(size, seed=seed + i))
        left, i = left - size, i + 1


def keys(reports: list[object]) -> list[str]:
    return [r.window_key for r in reports]  # type: ignore[attr-defined]


def test_ten_windows_between_two_evaluations_give_ten_reports_oldest_first(
    store: Store, make_stream_config: MakeConfig
) -> None:
    stream = row_stream(make_stream_config)
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0)
    ingest_windows(store, stream, 1)
    assert keys(evaluator.run_pending()) == ["rows:0-100"]
    ingest_windows(store, stream, 10, seed=100)  # 1000 more rows: windows 1..10
    reports = evaluator.run_pending()
    assert keys(reports) == [f"rows:{k * 100}-{k * 100 + 100}" for k in range(1, 11)]
    assert all(r.n_rows == 100 and r.status == "ok" for r in reports)
    assert [r.id for r in reports] == sorted(r.id for r in reports)
    assert evaluator.run_pending() == []
    # A restart (a new evaluator) resumes at the watermark: nothing is judged twice.
    assert StreamEvaluator(stream, store, clock=lambda: T0).run_pending() == []
    stored = store.streams.list_drift_reports(stream.name, limit=100)
    assert len(stored) == 11 and len({r.window_key for r in stored}) == 11


def test_missed_time_windows_are_judged_once_oldest_first(
    store: Store, make_stream_config: MakeConfig
) -> None:
    (stream,) = make_stream_config().streams  # 1h windows, min_rows 50
    for hour in range(6):
        ingest(store, stream, frame(200, seed=hour, start=T0 + timedelta(hours=hour)))
    clock = [T0 + timedelta(hours=1, minutes=1)]
    evaluator = StreamEvaluator(stream, store, clock=lambda: clock[0])
    assert [r.window_start for r in evaluator.run_pending()] == [T0]
    clock[0] += timedelta(hours=5)  # the daemon was down for five hours
    restarted = StreamEvaluator(stream, store, clock=lambda: clock[0])
    reports = restarted.run_pending()
    assert [r.window_start for r in reports] == [T0 + timedelta(hours=h) for h in range(1, 6)]
    assert all(r.n_rows == 200 for r in reports)
    assert restarted.run_pending() == [] and evaluator.run_pending() == []


def test_backfill_limit_keeps_the_newest_and_counts_the_dropped_once(
    store: Store, make_stream_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    stream = row_stream(make_stream_config, backfill=3)
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0)
    ingest_windows(store, stream, 10)
    with caplog.at_level(logging.WARNING, logger="monitor.streams.evaluate"):
        backlog = evaluator.backlog()
        assert backlog.dropped == 7
        assert [w.key for w in backlog.windows] == ["rows:700-800", "rows:800-900", "rows:900-1000"]
        assert evaluator.backlog().dropped == 0  # not judged yet, but not counted again
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "stream wine: 7 window(s) from rows:0-100 to rows:600-700 not judged: "
        "more than backfill = 3 windows were pending"
    )
    assert keys(evaluator.run_pending()) == ["rows:700-800", "rows:800-900", "rows:900-1000"]
    ingest_windows(store, stream, 2, seed=50)
    again = evaluator.backlog()
    assert again.dropped == 0 and [w.key for w in again.windows] == [
        "rows:1000-1100",
        "rows:1100-1200",
    ]


def test_windows_whose_rows_retention_dropped_are_skipped_and_counted(
    store: Store, make_stream_config: MakeConfig
) -> None:
    stream = row_stream(make_stream_config)
    ingest_windows(store, stream, 5)  # received at T0, like every ingest() batch
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0)
    assert keys(evaluator.run_pending())[:1] == ["rows:0-100"]
    ingest_windows(store, stream, 3, seed=10)  # windows 5-7, not judged yet
    # Retention takes the batches of rows 0-580: window 5 (rows 500-600) lost some.
    _drop_rows_before(store, stream.name, 580)
    backlog = evaluator.backlog()
    assert backlog.dropped == 1
    assert [w.key for w in backlog.windows] == ["rows:600-700", "rows:700-800"]
    # A new stream's rows are numbered from 0: windows retention took are counted too.
    fresh = row_stream(make_stream_config).model_copy(update={"name": "fresh"})
    ingest_windows(store, fresh, 4)
    _drop_rows_before(store, "fresh", 200)
    backlog = StreamEvaluator(fresh, store, clock=lambda: T0).backlog()
    assert backlog.dropped == 2 and [w.key for w in backlog.windows] == [
        "rows:200-300",
        "rows:300-400",
    ]


def _drop_rows_before(store: Store, stream: str, row: int) -> None:
    from sqlalchemy import delete

    from monitor.store.tables import stream_batches

    with store.engine.begin() as connection:
        connection.execute(
            delete(stream_batches).where(
                stream_batches.c.stream == stream, stream_batches.c.first_row < row
            )
        )


def test_a_files_backlog_reads_the_files_once(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").mkdir()
    for hour in range(4):
        data = pa.table(frame(120, seed=hour, start=T0 + timedelta(hours=hour)))
        pa_csv.write_csv(data, tmp_path / "in" / f"{hour}.csv")
    table = stream_table(source={"kind": "files", "glob": "in/*.csv"})
    (stream,) = make_stream_config(table).streams
    clock = [T0 + timedelta(hours=1)]
    evaluator = StreamEvaluator(stream, store, clock=lambda: clock[0])
    assert [r.n_rows for r in evaluator.run_pending()] == [120]  # a new stream: the latest
    reads: list[tuple[datetime, datetime]] = []
    read_glob = sources.read_glob

    def counting(pattern: str, ts: str, start: datetime, end: datetime) -> pa.Table | None:
        reads.append((start, end))
        return read_glob(pattern, ts, start, end)

    monkeypatch.setattr(sources, "read_glob", counting)
    clock[0] += timedelta(hours=3)
    reports = evaluator.run_pending()
    assert [(r.window_start, r.n_rows) for r in reports] == [
        (T0 + timedelta(hours=h), 120) for h in range(1, 4)
    ]
    assert reads == [(T0 + timedelta(hours=1), T0 + timedelta(hours=4))]


@pytest.fixture
def shared_store(store_url: str) -> Iterator[Store]:  # noqa: F811
    shared = Store(store_url)
    shared.upgrade()
    yield shared
    shared.close()


def test_two_judges_at_once_store_each_window_once_in_order(
    shared_store: Store, make_stream_config: MakeConfig
) -> None:
    """Two replicas judging the same backlog at the same time: a window the other stored
    first is refused, never stored twice, and reports stay in window order."""
    stream = row_stream(make_stream_config)
    ingest_windows(shared_store, stream, 10)
    replicas = [Store(str(shared_store.engine.url.render_as_string(False))) for _ in range(2)]
    judged: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def judge(i: int) -> None:
        evaluator = StreamEvaluator(stream, replicas[i], clock=lambda: T0)
        evaluator.profile()
        barrier.wait()
        judged[i] = keys(evaluator.run_pending())

    try:
        threads = [threading.Thread(target=judge, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for replica in replicas:
            replica.close()
    expected = [f"rows:{k * 100}-{k * 100 + 100}" for k in range(10)]
    stored = list(reversed(shared_store.streams.list_drift_reports(stream.name, limit=100)))
    assert keys(stored) == expected  # ids in window order, each window once
    # Each window is announced by the judge that stored it, never by both.
    assert sorted(judged[0] + judged[1]) == sorted(expected)


def test_switching_window_kinds_and_back_resumes_at_the_last_window_of_the_kind(
    store: Store, make_stream_config: MakeConfig
) -> None:
    rows = row_stream(make_stream_config)
    ingest_windows(store, rows, 2)
    assert keys(StreamEvaluator(rows, store, clock=lambda: T0).run_pending()) == [
        "rows:0-100",
        "rows:100-200",
    ]
    (timed,) = make_stream_config().streams  # the same stream, now cut by the hour
    clock = lambda: T0 + timedelta(hours=1)  # noqa: E731
    assert len(StreamEvaluator(timed, store, clock=clock).run_pending()) == 1
    ingest_windows(store, rows, 1, seed=7)
    # Back to rows: on from rows:100-200, not from row 0 (whose windows have reports).
    assert keys(StreamEvaluator(rows, store, clock=lambda: T0).run_pending()) == ["rows:200-300"]


def test_a_failing_window_stops_the_backlog_and_is_retried_first(
    store: Store, make_stream_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = row_stream(make_stream_config)
    ingest_windows(store, stream, 4)
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0)
    read = evaluator._read

    def flaky(window: Window) -> pa.Table:
        if window.key == "rows:200-300":
            raise SourceError("the source is down")
        return read(window)

    monkeypatch.setattr(evaluator, "_read", flaky)
    with pytest.raises(SourceError):
        evaluator.run_pending()
    assert keys(list(reversed(store.streams.list_drift_reports(stream.name)))) == [
        "rows:0-100",
        "rows:100-200",
    ]
    monkeypatch.setattr(evaluator, "_read", read)
    assert keys(evaluator.run_pending()) == ["rows:200-300", "rows:300-400"]
