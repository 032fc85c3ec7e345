"""Window arithmetic: aligned time windows, full row-count windows, their numbers, and
the plan of which ones an evaluation judges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.streams.windows import (
    Plan,
    after_key,
    complete_time_windows,
    latest_row_window,
    latest_time_window,
    plan,
    row_index,
    row_window,
    time_index,
    time_window,
)


@pytest.mark.parametrize(
    ("now", "every", "start", "end"),
    [
        pytest.param(
            "2024-05-01T12:30:00", "1h", "2024-05-01T11:00:00", "2024-05-01T12:00:00", id="mid"
        ),
        pytest.param(
            "2024-05-01T12:00:00", "1h", "2024-05-01T11:00:00", "2024-05-01T12:00:00", id="edge"
        ),
        pytest.param(
            "2024-05-01T12:07:00", "5m", "2024-05-01T12:00:00", "2024-05-01T12:05:00", id="5m"
        ),
        pytest.param(
            "2024-05-02T03:00:00", "1d", "2024-05-01T00:00:00", "2024-05-02T00:00:00", id="day"
        ),
    ],
)
def test_latest_time_window(now: str, every: str, start: str, end: str) -> None:
    sizes = {"1h": timedelta(hours=1), "5m": timedelta(minutes=5), "1d": timedelta(days=1)}
    at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    window = latest_time_window(at, sizes[every])
    assert window.start == datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert window.end == datetime.fromisoformat(end).replace(tzinfo=UTC)
    assert window.key == f"time:{window.start.isoformat()}/{window.end.isoformat()}"


def test_latest_row_window() -> None:
    assert latest_row_window(99, 100) is None
    first = latest_row_window(100, 100)
    assert first is not None and (first.first_row, first.end_row) == (0, 100)
    later = latest_row_window(350, 100)
    assert later is not None and (later.first_row, later.end_row, later.key) == (
        200,
        300,
        "rows:200-300",
    )


def test_windows_are_numbered_from_the_epoch() -> None:
    hour = timedelta(hours=1)
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    latest = latest_time_window(at, hour)
    index = complete_time_windows(at, hour) - 1
    assert time_window(index, every=hour) == latest
    assert time_index(datetime(2024, 5, 1, 12, tzinfo=UTC), hour) == index + 1  # on an edge
    assert time_index(at, hour) == index + 2  # inside a window: the next one
    assert row_window(3, rows=100) == latest_row_window(400, 100)
    assert (row_index(300, 100), row_index(301, 100)) == (3, 4)


@pytest.mark.parametrize(
    ("key", "rows", "every", "after"),
    [
        pytest.param("rows:200-300", 100, None, 3, id="rows"),
        pytest.param("rows:0-300", 200, None, 2, id="rows-resized"),
        pytest.param("time:1970-01-01T02:00:00+00:00/1970-01-01T03:00:00+00:00", None, 3600, 3),
        pytest.param("time:1970-01-01T00:00:00+00:00/1970-01-01T01:00:00+00:00", 100, None, None),
        pytest.param("rows:0-100", None, 60, None, id="kind-changed"),
        pytest.param("w", 100, None, None, id="not-a-window"),
        pytest.param("rows:x-y", 100, None, None, id="garbled"),
    ],
)
def test_after_key(key: str, rows: int | None, every: int | None, after: int | None) -> None:
    span = None if every is None else timedelta(seconds=every)
    assert after_key(key, rows=rows, every=span) == after


@pytest.mark.parametrize(
    ("start", "end", "backfill", "floor", "expected"),
    [
        pytest.param(3, 13, 100, None, Plan(3, 13, 3), id="all"),
        pytest.param(3, 3, 100, None, Plan(3, 3, 3), id="nothing-new"),
        pytest.param(5, 3, 100, None, Plan(5, 5, 5), id="watermark-ahead"),
        pytest.param(3, 13, 4, None, Plan(9, 13, 3), id="backfill"),
        pytest.param(0, 10, 100, 4, Plan(4, 10, 0), id="retention"),
        pytest.param(0, 10, 3, 4, Plan(7, 10, 0), id="both"),
        pytest.param(0, 10, 100, 12, Plan(10, 10, 0), id="all-rows-gone"),
    ],
)
def test_plan(start: int, end: int, backfill: int, floor: int | None, expected: Plan) -> None:
    assert plan(start, end, backfill=backfill, floor=floor) == expected
    assert expected.dropped == expected.first - start
