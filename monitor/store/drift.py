"""Statements for drift streams: ingested batches, late labels, reference profiles and
drift reports.

Each function takes an open connection; ``Store`` decides the transaction. A batch is
stored whole or not at all, and row numbers never overlap: on PostgreSQL appenders of one
stream are serialised by an advisory lock (SQLite's ``BEGIN IMMEDIATE`` already does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from monitor.errors import StoreError
from monitor.records import (
    DriftReport,
    NewDriftReport,
    StoredProfile,
    StreamBatch,
    StreamCount,
    StreamExtent,
)
from monitor.store.engine import dialect_insert
from monitor.store.tables import drift_profiles, drift_reports, stream_batches, stream_labels

__all__ = [
    "add_drift_report",
    "append_batch",
    "batches_between",
    "batches_for_rows",
    "delete_batches_before",
    "drift_report_for",
    "get_drift_html",
    "get_drift_report",
    "get_profile",
    "labels_for",
    "last_window_key",
    "latest_drift_reports",
    "list_drift_reports",
    "save_profile",
    "stream_counts",
    "stream_extent",
    "update_profile",
    "upsert_labels",
]


def append_batch(
    connection: Connection,
    stream: str,
    *,
    received_at: datetime,
    first_ts: datetime,
    last_ts: datetime,
    n_rows: int,
    payload: bytes,
) -> tuple[int, int]:
    """Store one ingest batch after the stream's last row; return (batch id, first row).

    Row numbers must not overlap: on PostgreSQL a transaction-scoped advisory lock per
    stream serialises appenders (SQLite's ``BEGIN IMMEDIATE`` already does), and the
    unique (stream, first_row) index catches anything that slips through.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"stream:{stream}"))))
    next_row = connection.scalar(
        select(
            func.coalesce(func.max(stream_batches.c.first_row + stream_batches.c.n_rows), 0)
        ).where(stream_batches.c.stream == stream)
    )
    first_row = int(next_row or 0)
    result = connection.execute(
        insert(stream_batches).values(
            stream=stream,
            received_at=received_at,
            first_ts=first_ts,
            last_ts=last_ts,
            first_row=first_row,
            n_rows=n_rows,
            payload=payload,
        )
    )
    batch_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if not isinstance(batch_id, int):
        raise StoreError(f"inserting a batch into stream {stream!r} returned no id")
    return batch_id, first_row


def delete_batches_before(connection: Connection, stream: str, before: datetime) -> int:
    """Drop the stream's batches received before ``before``; return how many."""
    result = connection.execute(
        delete(stream_batches).where(
            stream_batches.c.stream == stream, stream_batches.c.received_at < before
        )
    )
    return int(result.rowcount)


def save_profile(
    connection: Connection,
    stream: str,
    *,
    reference_hash: str,
    created_at: datetime,
    n_rows: int,
    profile: bytes,
) -> int:
    """Keep a reference profile; if one for the same reference exists, keep that one and
    return its id (two replicas computing it at once store it once)."""
    make_insert = dialect_insert(connection)
    connection.execute(
        make_insert(drift_profiles)
        .values(
            stream=stream,
            reference_hash=reference_hash,
            created_at=created_at,
            n_rows=n_rows,
            profile=profile,
        )
        .on_conflict_do_nothing(index_elements=["stream", "reference_hash"])
    )
    profile_id = connection.scalar(
        select(drift_profiles.c.id).where(
            drift_profiles.c.stream == stream, drift_profiles.c.reference_hash == reference_hash
        )
    )
    if not isinstance(profile_id, int):
        raise StoreError(f"storing the reference profile of stream {stream!r} returned no id")
    return profile_id


def update_profile(connection: Connection, profile_id: int, profile: bytes) -> None:
    """Replace a stored profile's bytes by the same profile with more calibrated thresholds
    (a cache: any replica's copy is correct, the last one written is kept)."""
    connection.execute(
        update(drift_profiles).where(drift_profiles.c.id == profile_id).values(profile=profile)
    )


def add_drift_report(connection: Connection, report: NewDriftReport) -> int | None:
    """Store a drift report; ``None`` if the stream's window already has one."""
    make_insert = dialect_insert(connection)
    result = connection.execute(
        make_insert(drift_reports)
        .values(
            stream=report.stream,
            window_key=report.window_key,
            window_start=report.window_start,
            window_end=report.window_end,
            created_at=report.created_at,
            status=report.status,
            n_rows=report.n_rows,
            drift_share=report.drift_share,
            dataset_drifted=report.dataset_drifted,
            columns=list(report.columns),
            profile_id=report.profile_id,
            html=report.html,
            segments=list(report.segments) if report.segments else None,
            shadow=report.shadow,
            shadow_due_at=report.shadow_due_at,
        )
        .on_conflict_do_nothing(index_elements=["stream", "window_key"])
        .returning(drift_reports.c.id)
    )
    report_id = result.scalar()
    return report_id if isinstance(report_id, int) else None


def upsert_labels(
    connection: Connection, stream: str, labels: Sequence[tuple[str, str | None]], *, at: datetime
) -> None:
    """Insert or replace the labels of records ``(record_id, label)`` of ``stream``."""
    make_insert = dialect_insert(connection)
    statement = make_insert(stream_labels)
    upsert = statement.on_conflict_do_update(
        index_elements=["stream", "record_id"],
        set_={"label": statement.excluded.label, "received_at": statement.excluded.received_at},
    )
    connection.execute(
        upsert,
        [
            {"stream": stream, "record_id": record_id, "label": label, "received_at": at}
            for record_id, label in labels
        ],
    )


def batches_between(
    connection: Connection, stream: str, start: datetime, end: datetime
) -> list[StreamBatch]:
    """The stream's batches with a row in ``[start, end)``, oldest first."""
    query = (
        select(stream_batches)
        .where(
            stream_batches.c.stream == stream,
            stream_batches.c.last_ts >= start,
            stream_batches.c.first_ts < end,
        )
        .order_by(stream_batches.c.first_row)
    )
    return [_to_batch(row) for row in connection.execute(query)]


def batches_for_rows(
    connection: Connection, stream: str, first_row: int, end_row: int
) -> list[StreamBatch]:
    """The stream's batches holding a row numbered in ``[first_row, end_row)``.

    The batch holding ``first_row`` is the last one starting at or before it: bounding
    the scan below by it makes this an index range of the window's own batches, not a
    scan from the stream's first row (a backlog reads each batch about once)."""
    before = stream_batches.alias("before")
    holding = (
        select(before.c.first_row)
        .where(before.c.stream == stream, before.c.first_row <= first_row)
        .order_by(before.c.first_row.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(stream_batches)
        .where(
            stream_batches.c.stream == stream,
            stream_batches.c.first_row >= func.coalesce(holding, 0),
            stream_batches.c.first_row < end_row,
            stream_batches.c.first_row + stream_batches.c.n_rows > first_row,
        )
        .order_by(stream_batches.c.first_row)
    )
    return [_to_batch(row) for row in connection.execute(query)]


def labels_for(
    connection: Connection, stream: str, record_ids: Sequence[str]
) -> dict[str, str | None]:
    """The stored labels of those records of ``stream`` (absent ids have none)."""
    found: dict[str, str | None] = {}
    ids = list(dict.fromkeys(record_ids))
    for start in range(0, len(ids), 1000):  # bounded IN lists
        query = select(stream_labels.c.record_id, stream_labels.c.label).where(
            stream_labels.c.stream == stream,
            stream_labels.c.record_id.in_(ids[start : start + 1000]),
        )
        found.update({row.record_id: row.label for row in connection.execute(query)})
    return found


def stream_counts(connection: Connection) -> list[StreamCount]:
    """Rows and batches ingested per stream (batches dropped by retention not counted)."""
    query = (
        select(
            stream_batches.c.stream,
            func.max(stream_batches.c.first_row + stream_batches.c.n_rows),
            func.count(),
            func.max(stream_batches.c.received_at),
        )
        .group_by(stream_batches.c.stream)
        .order_by(stream_batches.c.stream)
    )
    return [
        StreamCount(stream, int(rows or 0), int(count), last)
        for stream, rows, count, last in connection.execute(query)
    ]


def stream_extent(connection: Connection, stream: str) -> StreamExtent | None:
    """The stream's retained row numbers, from its first and last batch (two index
    look-ups); ``None`` before its first batch."""
    columns = (stream_batches.c.first_row, stream_batches.c.n_rows, stream_batches.c.first_ts)
    mine = stream_batches.c.stream == stream
    first = connection.execute(
        select(*columns).where(mine).order_by(stream_batches.c.first_row).limit(1)
    ).one_or_none()
    last = connection.execute(
        select(*columns).where(mine).order_by(stream_batches.c.first_row.desc()).limit(1)
    ).one_or_none()
    if first is None or last is None:
        return None
    return StreamExtent(first.first_row, last.first_row + last.n_rows, first.first_ts)


def get_profile(connection: Connection, stream: str, reference_hash: str) -> StoredProfile | None:
    """The stored profile of ``stream`` for the reference with ``reference_hash``."""
    row = connection.execute(
        select(drift_profiles).where(
            drift_profiles.c.stream == stream, drift_profiles.c.reference_hash == reference_hash
        )
    ).one_or_none()
    if row is None:
        return None
    return StoredProfile(
        id=row.id,
        stream=row.stream,
        reference_hash=row.reference_hash,
        created_at=row.created_at,
        n_rows=row.n_rows,
        profile=bytes(row.profile),
    )


_REPORT_COLUMNS = [c for c in drift_reports.c if c.name != "html"]


def get_drift_report(connection: Connection, report_id: int) -> DriftReport | None:
    """The drift report with ``report_id`` (without its HTML), or ``None``."""
    row = connection.execute(
        select(*_REPORT_COLUMNS, drift_reports.c.html.is_not(None).label("has_html")).where(
            drift_reports.c.id == report_id
        )
    ).one_or_none()
    return None if row is None else _to_report(row)


def get_drift_html(connection: Connection, report_id: int) -> str | None:
    """The stored HTML report of drift report ``report_id``, if any."""
    html = connection.scalar(select(drift_reports.c.html).where(drift_reports.c.id == report_id))
    return html if isinstance(html, str) else None


def list_drift_reports(
    connection: Connection, stream: str, *, limit: int = 50, before_id: int | None = None
) -> list[DriftReport]:
    """A stream's drift reports newest first; keyset-paged by ``before_id``."""
    query = (
        select(*_REPORT_COLUMNS, drift_reports.c.html.is_not(None).label("has_html"))
        .where(drift_reports.c.stream == stream)
        .order_by(drift_reports.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(drift_reports.c.id < before_id)
    return [_to_report(row) for row in connection.execute(query)]


def drift_report_for(connection: Connection, stream: str, window_key: str) -> DriftReport | None:
    """The drift report of one window of a stream, if it was judged."""
    query = select(*_REPORT_COLUMNS, drift_reports.c.html.is_not(None).label("has_html")).where(
        drift_reports.c.stream == stream, drift_reports.c.window_key == window_key
    )
    row = connection.execute(query).first()
    return None if row is None else _to_report(row)


def last_window_key(connection: Connection, stream: str, kind: str) -> str | None:
    """The window key of the stream's newest report whose key starts with ``kind:``
    (``rows`` or ``time``): a stream's watermark. Walks the (stream, id) index from the
    newest report, so it stops at once unless the windowing changed kind."""
    key = connection.scalar(
        select(drift_reports.c.window_key)
        .where(
            drift_reports.c.stream == stream,
            drift_reports.c.window_key.startswith(f"{kind}:", autoescape=True),
        )
        .order_by(drift_reports.c.id.desc())
        .limit(1)
    )
    return key if isinstance(key, str) else None


def latest_drift_reports(connection: Connection) -> list[DriftReport]:
    """The newest ``ok`` report of every stream (one grouped query: the exporter calls it
    on every scrape)."""
    latest = (
        select(func.max(drift_reports.c.id).label("report_id"))
        .where(drift_reports.c.status == "ok")
        .group_by(drift_reports.c.stream)
        .subquery()
    )
    query = (
        select(*_REPORT_COLUMNS, drift_reports.c.html.is_not(None).label("has_html"))
        .join(latest, latest.c.report_id == drift_reports.c.id)
        .order_by(drift_reports.c.stream)
    )
    return [_to_report(row) for row in connection.execute(query)]


def _to_batch(row: Row[tuple[object, ...]]) -> StreamBatch:
    return StreamBatch(
        id=row.id,
        stream=row.stream,
        received_at=row.received_at,
        first_ts=row.first_ts,
        last_ts=row.last_ts,
        first_row=row.first_row,
        n_rows=row.n_rows,
        payload=bytes(row.payload),
    )


def _to_report(row: Any) -> DriftReport:
    return DriftReport(
        id=row.id,
        stream=row.stream,
        window_key=row.window_key,
        window_start=row.window_start,
        window_end=row.window_end,
        created_at=row.created_at,
        status=row.status,
        n_rows=row.n_rows,
        drift_share=row.drift_share,
        dataset_drifted=bool(row.dataset_drifted),
        columns=tuple(row.columns),
        profile_id=row.profile_id,
        has_html=bool(row.has_html),
        segments=tuple(row.segments or ()),
        shadow=row.shadow,
        shadow_due_at=row.shadow_due_at,
    )
