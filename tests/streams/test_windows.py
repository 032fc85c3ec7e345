"""Window arithmetic: aligned time windows and full row-count windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.streams.windows import latest_row_window, latest_time_window


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
