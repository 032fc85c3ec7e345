"""Tumbling windows: numbering a stream's windows and planning which ones to judge.

Time windows are aligned on the Unix epoch (``every = "1h"`` windows start on the hour),
so every replica and every restart cuts the same windows; a window is complete once its
end has passed. Row-count windows cover stream row numbers ``[k * rows, (k + 1) * rows)``
and are complete once that many rows were ingested. Either way window ``k`` is a number,
so "every window after the last judged one" is a range of numbers. Each window has a
``key`` unique within its stream: the store keeps one drift report per key, and the key
of the newest report is where the next evaluation starts (see ``after_key``).
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


@dataclass(frozen=True, slots=True)
class Plan:
    """Which windows an evaluation judges: numbers ``[first, end)``, oldest first, and the
    older ones ``[dropped_from, first)`` it gives up on (past the backfill limit or the
    retention)."""

    first: int
    end: int
    dropped_from: int

    @property
    def dropped(self) -> int:
        return self.first - self.dropped_from


def _micros(span: timedelta) -> int:
    return round(span.total_seconds() * 1_000_000)


def time_window(index: int, *, every: timedelta) -> Window:
    """Time window number ``index``: ``[EPOCH + index * every, EPOCH + (index + 1) * every)``."""
    step = _micros(every)
    start = EPOCH + timedelta(microseconds=index * step)
    end = start + every
    return Window(key=f"time:{start.isoformat()}/{end.isoformat()}", start=start, end=end)


def row_window(index: int, *, rows: int) -> Window:
    """Row window number ``index``: stream rows ``[index * rows, (index + 1) * rows)``."""
    first = index * rows
    return Window(key=f"rows:{first}-{first + rows}", first_row=first, end_row=first + rows)


def complete_time_windows(now: datetime, every: timedelta) -> int:
    """How many time windows have ended at or before ``now``: windows ``[0, n)``."""
    return _micros(now - EPOCH) // _micros(every)


def time_index(at: datetime, every: timedelta) -> int:
    """The number of the first time window that starts at or after ``at``."""
    return -(-_micros(at - EPOCH) // _micros(every))


def row_index(row: int, rows: int) -> int:
    """The number of the first row window that starts at or after row ``row``."""
    return -(-row // rows)


def after_key(key: str, *, rows: int | None, every: timedelta | None) -> int | None:
    """The number of the first window after the window ``key`` names, in this stream's
    windowing; ``None`` when the key is of the other kind (the windowing changed) or
    not a window key at all. A resized window starts at the first whole window after."""
    kind, _, span = key.partition(":")
    try:
        if kind == "rows" and rows is not None:
            return row_index(int(span.rsplit("-", 1)[1]), rows)
        if kind == "time" and every is not None:
            end = datetime.fromisoformat(span.split("/", 1)[1])
            return time_index(end, every) if end.tzinfo is not None else None
    except (IndexError, ValueError):
        return None
    return None


def plan(start: int, end: int, *, backfill: int, floor: int | None = None) -> Plan:
    """Judge windows ``[start, end)``, but none before ``floor`` (their data is gone) and
    at most the newest ``backfill`` of them; what is left out is dropped, oldest first."""
    first = max(start, end - backfill, start if floor is None else floor)
    first = min(first, max(start, end))  # nothing past the last complete window
    return Plan(first=first, end=max(first, end), dropped_from=start)


def latest_time_window(now: datetime, every: timedelta) -> Window:
    """The latest window of length ``every`` that ended at or before ``now``."""
    return time_window(complete_time_windows(now, every) - 1, every=every)


def latest_row_window(total_rows: int, rows: int) -> Window | None:
    """The latest full window of ``rows`` rows among ``total_rows``; ``None`` before the
    first one is full."""
    complete = total_rows // rows
    return None if complete == 0 else row_window(complete - 1, rows=rows)


def position(window: Window) -> int:
    """Where ``window`` sorts among its stream's windows: its first row, or its start in
    microseconds since the epoch (a one-off window: 0)."""
    if window.first_row is not None:
        return window.first_row
    if window.start is not None:
        return _micros(window.start - EPOCH)
    return 0
