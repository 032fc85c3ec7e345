"""Statements for shadow streams: a shadow stream's predictions by record id, joined to
a production window's records, and the production windows whose join is still open.

A production window's rows live in batch payloads; its record ids are read with them.
The shadow side is never read whole: a window's ids are looked up on the (stream,
record_id) primary key, a thousand at a time, and only the predictions received by the
window's due time come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from monitor.store.engine import dialect_insert
from monitor.store.tables import drift_reports, stream_predictions

__all__ = [
    "delete_predictions_before",
    "latest_prediction_at",
    "open_shadow_report_ids",
    "predictions_for",
    "update_shadow",
    "upsert_predictions",
]

_CHUNK = 1000
"""Record ids per ``IN`` list: bounded statements on either database."""


def upsert_predictions(
    connection: Connection,
    stream: str,
    predictions: Sequence[tuple[str, str | None]],
    *,
    at: datetime,
) -> None:
    """Insert or replace the predictions ``(record_id, prediction)`` of ``stream``'s
    records; of one record id named twice, the last one is kept."""
    latest = dict(predictions)  # PostgreSQL refuses one statement touching a row twice
    if not latest:
        return
    statement = dialect_insert(connection)(stream_predictions)
    upsert = statement.on_conflict_do_update(
        index_elements=["stream", "record_id"],
        set_={
            "prediction": statement.excluded.prediction,
            "received_at": statement.excluded.received_at,
        },
    )
    rows = [
        {"stream": stream, "record_id": rid, "prediction": value, "received_at": at}
        for rid, value in latest.items()
    ]
    for start in range(0, len(rows), _CHUNK):
        connection.execute(upsert, rows[start : start + _CHUNK])


def predictions_for(
    connection: Connection,
    stream: str,
    record_ids: Sequence[str],
    *,
    until: datetime | None = None,
) -> dict[str, str | None]:
    """The predictions of those records of ``stream`` received at or before ``until``
    (any time without it); absent ids have none."""
    found: dict[str, str | None] = {}
    ids = list(dict.fromkeys(record_ids))
    table = stream_predictions.c
    for start in range(0, len(ids), _CHUNK):
        query = select(table.record_id, table.prediction).where(
            table.stream == stream, table.record_id.in_(ids[start : start + _CHUNK])
        )
        if until is not None:
            query = query.where(table.received_at <= until)
        found.update({row.record_id: row.prediction for row in connection.execute(query)})
    return found


def latest_prediction_at(connection: Connection, stream: str) -> datetime | None:
    """When the newest prediction of ``stream`` arrived (one index look-up)."""
    at = connection.scalar(
        select(func.max(stream_predictions.c.received_at)).where(
            stream_predictions.c.stream == stream
        )
    )
    return at if isinstance(at, datetime) else None


def delete_predictions_before(connection: Connection, stream: str, before: datetime) -> int:
    """Drop the predictions of ``stream`` received before ``before`` (its retention)."""
    result = connection.execute(
        delete(stream_predictions).where(
            stream_predictions.c.stream == stream, stream_predictions.c.received_at < before
        )
    )
    return int(result.rowcount)


def open_shadow_report_ids(connection: Connection, stream: str, *, limit: int) -> list[int]:
    """The ids of ``stream``'s reports whose shadow join is still open (provisional),
    oldest first, at most ``limit``."""
    query = (
        select(drift_reports.c.id)
        .where(drift_reports.c.stream == stream, drift_reports.c.shadow_due_at.is_not(None))
        .order_by(drift_reports.c.id)
        .limit(limit)
    )
    return [int(i) for i in connection.scalars(query)]


def update_shadow(
    connection: Connection, report_id: int, shadow: dict[str, Any], *, due_at: datetime | None
) -> None:
    """Replace a report's shadow comparison; ``due_at`` ``None`` closes its join."""
    connection.execute(
        update(drift_reports)
        .where(drift_reports.c.id == report_id)
        .values(shadow=shadow, shadow_due_at=due_at)
    )
