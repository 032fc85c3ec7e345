"""Tumbling windows: which window of a stream is the latest complete one.

Time windows are aligned on the Unix epoch (``every = "1h"`` windows start on the hour),
so every replica and every restart cuts the same windows; a window is complete once its
end has passed. Row-count windows cover stream row numbers ``[k * rows, (k + 1) * rows)``
and are complete once that many rows were ingested. Each window has a ``key`` unique
within its stream: the store keeps one drift report per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """One window: a time span, a row-number span, or both unknown for a one-off."""

    key: str
    start: datetime | None = None
    end: datetime | None = None
    first_row: int | None = None
    end_row: int | None = None


def latest_time_window(now: datetime, every: timedelta) -> Window:
    """The latest window of length ``every`` that ended at or before ``now``."""
    step = round(every.total_seconds() * 1_000_000)
    elapsed = round((now - EPOCH).total_seconds() * 1_000_000)
    end = EPOCH + timedelta(microseconds=(elapsed // step) * step)
    start = end - every
    return Window(key=f"time:{start.isoformat()}/{end.isoformat()}", start=start, end=end)


def latest_row_window(total_rows: int, rows: int) -> Window | None:
    """The latest full window of ``rows`` rows among ``total_rows``; ``None`` before the
    first one is full."""
    complete = total_rows // rows
    if complete == 0:
        return None
    first = (complete - 1) * rows
    return Window(key=f"rows:{first}-{first + rows}", first_row=first, end_row=first + rows)
