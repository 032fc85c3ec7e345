"""Statements for the realized performance of stream windows (``stream_performance``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from monitor.records import WindowPerformance
from monitor.store.engine import dialect_insert
from monitor.store.tables import stream_labels, stream_performance

__all__ = [
    "latest_label_at",
    "latest_performance",
    "open_performance",
    "performance_for",
    "save_performance",
]

_UPDATED = [c.name for c in stream_performance.c if c.name not in ("id", "created_at")]


def save_performance(connection: Connection, row: WindowPerformance) -> int:
    """Insert the window's performance, or replace the stored one in place."""
    values = asdict(row)
    values.pop("id")
    values["metrics"] = list(row.metrics)
    values["comparison"] = list(row.comparison)
    statement = dialect_insert(connection)(stream_performance).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["stream", "window_key"],
        set_={name: statement.excluded[name] for name in _UPDATED},
    )
    result = connection.execute(statement.returning(stream_performance.c.id))
    return int(result.scalar_one())


def performance_for(
    connection: Connection, stream: str, window_keys: Sequence[str]
) -> dict[str, WindowPerformance]:
    """The stored performance of those windows of ``stream``, by window key."""
    found: dict[str, WindowPerformance] = {}
    keys = list(dict.fromkeys(window_keys))
    for start in range(0, len(keys), 500):
        query = select(stream_performance).where(
            stream_performance.c.stream == stream,
            stream_performance.c.window_key.in_(keys[start : start + 500]),
        )
        found.update((row.window_key, _to_row(row)) for row in connection.execute(query))
    return found


def open_performance(
    connection: Connection, stream: str, *, since: datetime, limit: int
) -> list[WindowPerformance]:
    """The newest ``limit`` windows of ``stream`` created at or after ``since``, oldest
    first: those that labels may still change."""
    query = (
        select(stream_performance)
        .where(stream_performance.c.stream == stream, stream_performance.c.created_at >= since)
        .order_by(stream_performance.c.id.desc())
        .limit(limit)
    )
    return [_to_row(row) for row in reversed(list(connection.execute(query)))]


def latest_label_at(connection: Connection, stream: str) -> datetime | None:
    """When the newest label of ``stream`` was received (``None``: no label yet)."""
    at = connection.scalar(
        select(func.max(stream_labels.c.received_at)).where(stream_labels.c.stream == stream)
    )
    return at if isinstance(at, datetime) else None


def latest_performance(connection: Connection) -> list[WindowPerformance]:
    """The newest scored (``ok``) window's performance of every stream (the exporter, on
    every scrape)."""
    latest = (
        select(func.max(stream_performance.c.id).label("row_id"))
        .where(stream_performance.c.status == "ok")
        .group_by(stream_performance.c.stream)
        .subquery()
    )
    query = (
        select(stream_performance)
        .join(latest, latest.c.row_id == stream_performance.c.id)
        .order_by(stream_performance.c.stream)
    )
    return [_to_row(row) for row in connection.execute(query)]


def _to_row(row: Any) -> WindowPerformance:
    return WindowPerformance(
        id=row.id,
        stream=row.stream,
        window_key=row.window_key,
        window_start=row.window_start,
        window_end=row.window_end,
        report_id=row.report_id,
        state=row.state,
        status=row.status,
        n_rows=row.n_rows,
        n_labelled=row.n_labelled,
        metrics=tuple(row.metrics),
        comparison=tuple(row.comparison),
        worse=bool(row.worse),
        baseline=row.baseline,
        due_at=row.due_at,
        labels_until=row.labels_until,
        labels_digest=row.labels_digest,
        reopened=row.reopened,
        reopened_at=row.reopened_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        groups=dict(row.groups),
    )
