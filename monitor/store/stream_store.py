"""The ``store.streams`` part of the store: ingested batches, late labels, reference
profiles, drift reports and realized window performance (``drift``, ``ingest`` and
``performance`` have the SQL).

:class:`StreamStore` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.records import (
    DriftReport,
    NewDriftReport,
    StoredProfile,
    StreamBatch,
    StreamCount,
    StreamExtent,
    WindowPerformance,
)
from monitor.store import drift, ingest, performance, shadow
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["StreamStore"]


class StreamStore:
    """Ingested batches, late labels, reference profiles, drift reports and performance."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append_batch(
        self,
        stream: str,
        *,
        received_at: datetime,
        first_ts: datetime,
        last_ts: datetime,
        n_rows: int,
        payload: bytes,
    ) -> tuple[int, int]:
        """Store one validated ingest batch whole; return (batch id, its first row number)."""
        if n_rows < 1:
            raise ValueError(f"n_rows must be positive, got: {n_rows}")
        received_at = ensure_utc(received_at, name="received_at")
        first_ts = ensure_utc(first_ts, name="first_ts")
        last_ts = ensure_utc(last_ts, name="last_ts")
        if last_ts < first_ts:
            raise ValueError(f"last_ts {last_ts} is before first_ts {first_ts}")
        with self._store._writing(f"appending a batch to stream {stream!r}") as connection:
            return drift.append_batch(
                connection,
                stream,
                received_at=received_at,
                first_ts=first_ts,
                last_ts=last_ts,
                n_rows=n_rows,
                payload=payload,
            )

    def append_pending(
        self, batches: Sequence[ingest.PendingBatch], *, key_ttl: timedelta
    ) -> list[ingest.Appended]:
        """Store validated batches in one transaction, each after its stream's last row,
        answering a batch whose idempotency key is known from that key instead (see
        ``monitor.store.ingest``). Raises ``KeyReused`` for a key used for another body
        and ``StoreBusy`` while SQLite stays locked; either way nothing is stored."""
        for batch in batches:
            if batch.n_rows < 1:
                raise ValueError(f"n_rows must be positive, got: {batch.n_rows}")
            for name in ("received_at", "first_ts", "last_ts"):
                ensure_utc(getattr(batch, name), name=name)
            if batch.last_ts < batch.first_ts:
                raise ValueError(f"last_ts {batch.last_ts} is before first_ts {batch.first_ts}")
        with self._store._writing(f"appending {len(batches)} batch(es)") as connection:
            return [ingest.append(connection, b, key_ttl=key_ttl) for b in batches]

    def delete_batches_before(self, stream: str, before: datetime) -> int:
        """Drop batches of ``stream`` received before ``before`` (retention)."""
        before = ensure_utc(before, name="before")
        with self._store._writing(f"expiring batches of stream {stream!r}") as connection:
            shadow.delete_predictions_before(connection, stream, before)
            return drift.delete_batches_before(connection, stream, before)

    def batches_between(self, stream: str, start: datetime, end: datetime) -> list[StreamBatch]:
        """Batches of ``stream`` holding a row timestamped in ``[start, end)``."""
        start, end = ensure_utc(start, name="start"), ensure_utc(end, name="end")
        with self._store._reading(f"reading batches of stream {stream!r}") as connection:
            return drift.batches_between(connection, stream, start, end)

    def batches_for_rows(self, stream: str, first_row: int, end_row: int) -> list[StreamBatch]:
        """Batches of ``stream`` holding a row numbered in ``[first_row, end_row)``."""
        with self._store._reading(f"reading batches of stream {stream!r}") as connection:
            return drift.batches_for_rows(connection, stream, first_row, end_row)

    def upsert_labels(
        self, stream: str, labels: Sequence[tuple[str, str | None]], *, at: datetime
    ) -> None:
        """Store late labels ``(record_id, label)`` of ``stream``, replacing older ones."""
        at = ensure_utc(at, name="at")
        ids = [record_id for record_id, _ in labels]
        if len(set(ids)) != len(ids):
            raise ValueError("labels name a record id twice")
        if not labels:
            return
        with self._store._writing(f"storing labels of stream {stream!r}") as connection:
            drift.upsert_labels(connection, stream, labels, at=at)

    def upsert_predictions(
        self, stream: str, predictions: Sequence[tuple[str, str | None]], *, at: datetime
    ) -> None:
        """Store a shadow stream's predictions ``(record_id, prediction)``, replacing older
        ones (ingest writes them with their batch: ``PendingBatch.predictions``)."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"storing predictions of stream {stream!r}") as connection:
            shadow.upsert_predictions(connection, stream, predictions, at=at)

    def predictions_for(
        self, stream: str, record_ids: Sequence[str], *, until: datetime | None = None
    ) -> dict[str, str | None]:
        """The stored predictions of those records of the shadow stream ``stream``,
        received at or before ``until``."""
        with self._store._reading(f"reading predictions of stream {stream!r}") as connection:
            return shadow.predictions_for(connection, stream, record_ids, until=until)

    def latest_prediction_at(self, stream: str) -> datetime | None:
        """When the newest prediction of the shadow stream ``stream`` arrived."""
        with self._store._reading(f"reading predictions of stream {stream!r}") as connection:
            return shadow.latest_prediction_at(connection, stream)

    def open_shadow_reports(self, stream: str, *, limit: int) -> list[DriftReport]:
        """``stream``'s reports whose join with its shadow stream is still open, oldest
        first."""
        with self._store._reading(f"reading open windows of {stream!r}") as connection:
            ids = shadow.open_shadow_report_ids(connection, stream, limit=limit)
            reports = [drift.get_drift_report(connection, i) for i in ids]
        return [r for r in reports if r is not None]

    def update_shadow(
        self, report_id: int, comparison: dict[str, Any], *, due_at: datetime | None
    ) -> None:
        """Replace a report's shadow comparison; ``due_at`` ``None``: its join is closed."""
        with self._store._writing(f"updating the shadow comparison of {report_id}") as connection:
            shadow.update_shadow(connection, report_id, comparison, due_at=due_at)

    def labels_for(self, stream: str, record_ids: Sequence[str]) -> dict[str, str | None]:
        """Stored labels of those records of ``stream``."""
        with self._store._reading(f"reading labels of stream {stream!r}") as connection:
            return drift.labels_for(connection, stream, record_ids)

    def stream_counts(self) -> list[StreamCount]:
        """Rows ingested per stream."""
        with self._store._reading("counting stream rows") as connection:
            return drift.stream_counts(connection)

    def stream_extent(self, stream: str) -> StreamExtent | None:
        """The retained rows of ``stream``; ``None`` before its first batch."""
        with self._store._reading(f"reading the extent of stream {stream!r}") as connection:
            return drift.stream_extent(connection, stream)

    def save_profile(
        self, stream: str, *, reference_hash: str, at: datetime, n_rows: int, profile: bytes
    ) -> int:
        """Keep the reference profile of ``stream`` once per reference; return its id."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"storing the reference profile of {stream!r}") as connection:
            return drift.save_profile(
                connection,
                stream,
                reference_hash=reference_hash,
                created_at=at,
                n_rows=n_rows,
                profile=profile,
            )

    def update_profile(self, stream: str, profile_id: int, profile: bytes) -> None:
        """Store profile ``profile_id`` again, with the thresholds calibrated since."""
        with self._store._writing(f"updating the reference profile of {stream!r}") as connection:
            drift.update_profile(connection, profile_id, profile)

    def get_profile(self, stream: str, reference_hash: str) -> StoredProfile | None:
        """The stored profile of ``stream`` for that reference, or ``None``."""
        with self._store._reading(f"reading the reference profile of {stream!r}") as connection:
            return drift.get_profile(connection, stream, reference_hash)

    def add_drift_report(self, report: NewDriftReport) -> int | None:
        """Store a drift report; ``None`` when its window already has one."""
        ensure_utc(report.created_at, name="created_at")
        if report.drift_share is not None and not math.isfinite(report.drift_share):
            raise ValueError(f"drift_share must be finite, got: {report.drift_share}")
        with self._store._writing(f"storing a drift report of {report.stream!r}") as connection:
            return drift.add_drift_report(connection, report)

    def get_drift_report(self, report_id: int) -> DriftReport | None:
        """The drift report ``report_id`` (``has_html`` tells whether HTML is stored)."""
        with self._store._reading(f"reading drift report {report_id}") as connection:
            return drift.get_drift_report(connection, report_id)

    def get_drift_html(self, report_id: int) -> str | None:
        """The HTML report stored with drift report ``report_id``, if any."""
        with self._store._reading(f"reading the HTML of drift report {report_id}") as connection:
            return drift.get_drift_html(connection, report_id)

    def list_drift_reports(
        self, stream: str, *, limit: int = 50, before_id: int | None = None
    ) -> list[DriftReport]:
        """Drift reports of ``stream`` newest first; page with ``before_id``."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got: {limit}")
        with self._store._reading(f"listing drift reports of {stream!r}") as connection:
            return drift.list_drift_reports(connection, stream, limit=limit, before_id=before_id)

    def drift_report_for(self, stream: str, window_key: str) -> DriftReport | None:
        """The drift report of the window ``window_key`` of ``stream``, if judged."""
        with self._store._reading(f"reading a drift report of {stream!r}") as connection:
            return drift.drift_report_for(connection, stream, window_key)

    def last_window_key(self, stream: str, kind: str) -> str | None:
        """The key of the newest ``kind`` (``rows``/``time``) window judged of ``stream``."""
        with self._store._reading(f"reading the watermark of stream {stream!r}") as connection:
            return drift.last_window_key(connection, stream, kind)

    def latest_drift_reports(self) -> list[DriftReport]:
        """The newest ``ok`` drift report of every stream."""
        with self._store._reading("reading latest drift reports") as connection:
            return drift.latest_drift_reports(connection)

    def save_performance(self, row: WindowPerformance) -> WindowPerformance:
        """Store a window's realized performance, replacing the window's previous one."""
        for name in ("due_at", "created_at", "updated_at"):
            ensure_utc(getattr(row, name), name=name)
        with self._store._writing(f"storing the performance of {row.stream!r}") as connection:
            row_id = performance.save_performance(connection, row)
        return replace(row, id=row_id)

    def performance_for(
        self, stream: str, window_keys: Sequence[str]
    ) -> dict[str, WindowPerformance]:
        """The stored performance of those windows of ``stream``, by window key."""
        with self._store._reading(f"reading the performance of {stream!r}") as connection:
            return performance.performance_for(connection, stream, window_keys)

    def open_performance(
        self, stream: str, *, since: datetime, limit: int
    ) -> list[WindowPerformance]:
        """The newest ``limit`` windows of ``stream`` judged since ``since``, oldest first."""
        since = ensure_utc(since, name="since")
        with self._store._reading(f"reading the open windows of {stream!r}") as connection:
            return performance.open_performance(connection, stream, since=since, limit=limit)

    def latest_label_at(self, stream: str) -> datetime | None:
        """When the newest label of ``stream`` arrived."""
        with self._store._reading(f"reading the labels of {stream!r}") as connection:
            return performance.latest_label_at(connection, stream)

    def latest_performance(self) -> list[WindowPerformance]:
        """The newest scored (``ok``) window's performance of every stream."""
        with self._store._reading("reading latest window performance") as connection:
            return performance.latest_performance(connection)
