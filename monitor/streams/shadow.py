"""Join a stream's windows to a shadow stream's predictions by record id.

A stream with ``shadow = { stream = "..." }`` gets the shadow model's predictions from
another ingest stream: records with the same ``record_id`` whose ``prediction`` is the
shadow model's answer. The shadow stream's ``(record_id, prediction)`` pairs are written
with each of its batches (``indexed_predictions``), so a production window looks its
records' ids up in the store (``StreamStore.predictions_for``) rather than reading the
shadow stream. The joined columns go through the same comparison as a stream carrying
``shadow_prediction`` (``monitor.performance.shadow.compare_shadow``), and the result
is stored in the same place, the window's drift report.

Shadow records may arrive after the window is judged: a window is ``provisional``
until ``shadow.max_lag`` after its end (a row window: after it was judged) and joins
only the shadow records received by then, so its final figures do not depend on when
the daemon looked. ``refresh`` runs after each evaluation: an open window is joined
again when shadow records arrived since its last join, and closed (``final``) at the
first refresh after its due time. A final window is never re-opened: its lag is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pyarrow as pa

from monitor.clock import Clock, utc_now
from monitor.config.streams import StreamConfig
from monitor.performance.shadow import compare_shadow
from monitor.records import DriftReport
from monitor.store.parts import HasStreams
from monitor.streams.windows import Window

logger = logging.getLogger(__name__)

__all__ = ["ShadowJoin", "compare_columns", "indexed_predictions", "window_of_report"]

Reader = Callable[[Window], pa.Table]


def indexed_predictions(
    stream: StreamConfig, table: pa.Table
) -> tuple[tuple[str, str | None], ...]:
    """The ``(record_id, prediction)`` pairs of a shadow stream's batch, as text (a
    float as its shortest exact repr); records without an id are left out."""
    if stream.record_id is None or stream.prediction is None:
        return ()
    ids = table.column(stream.record_id).to_pylist()
    values = table.column(stream.prediction).to_pylist()
    return tuple(
        (str(rid), None if value is None else repr(value) if isinstance(value, float) else value)
        for rid, value in zip(ids, values, strict=True)
        if rid is not None
    )


def compare_columns(
    stream: StreamConfig, predictions: list[Any], shadow: list[Any]
) -> dict[str, Any]:
    """The stored form of a window's shadow comparison, however the shadow's predictions
    came (a column of the record, or a shadow stream)."""
    settings = stream.shadow
    return compare_shadow(
        stream.prediction_kind,
        predictions,
        shadow,
        min_pairs=settings.min_pairs,
        tolerance=settings.tolerance,
        confidence=settings.confidence,
    ).to_json()


def window_of_report(report: DriftReport) -> Window:
    """The window a stored report is about, to read it again."""
    kind, _, span = report.window_key.partition(":")
    if kind == "rows":
        first, end = span.split("-", 1)
        return Window(key=report.window_key, first_row=int(first), end_row=int(end))
    return Window(key=report.window_key, start=report.window_start, end=report.window_end)


class ShadowJoin:
    """One stream's join with its shadow stream: at judge time, then as shadow records
    arrive, until each window's lag is over."""

    def __init__(
        self, stream: StreamConfig, store: HasStreams, *, read: Reader, clock: Clock = utc_now
    ) -> None:
        self.stream = stream
        self._store = store
        self._read = read
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.stream.shadow.stream is not None and self.stream.prediction is not None

    def due(self, window: Window, judged_at: datetime) -> datetime:
        """When ``window``'s join closes: ``max_lag`` after its end (or its judging)."""
        return (window.end or judged_at) + self.stream.shadow.max_lag

    def compare(self, window: Window, table: pa.Table) -> tuple[dict[str, Any], datetime | None]:
        """A just-judged window's comparison and when its join closes (``None``: closed,
        its lag is already over)."""
        now = self._clock()
        due = self.due(window, now)
        return self._joined(table, due, now), (due if now < due else None)

    def refresh(self) -> list[DriftReport]:
        """Join the open windows again where shadow records arrived since, close the due
        ones; return the reports whose comparison changed, oldest first."""
        if not self.enabled:
            return []
        assert self.stream.shadow.stream is not None
        now = self._clock()
        open_reports = self._store.streams.open_shadow_reports(
            self.stream.name, limit=self.stream.window.backfill
        )
        if not open_reports:
            return []
        newest = self._store.streams.latest_prediction_at(self.stream.shadow.stream)
        changed = []
        for report in open_reports:
            updated = self._refresh(report, newest, now)
            if updated is not None:
                changed.append(updated)
        return changed

    def _refresh(
        self, report: DriftReport, newest: datetime | None, now: datetime
    ) -> DriftReport | None:
        before = report.shadow or {}
        due = report.shadow_due_at
        assert due is not None
        joined = before.get("joined_until")
        fresh = newest is not None and (joined is None or newest > datetime.fromisoformat(joined))
        closing = now >= due
        if not fresh and not closing:
            return None
        table = self._read(window_of_report(report))
        if table.num_rows < report.n_rows:
            # Retention dropped some of the window's rows: keep what was joined, close it.
            after, closing = {**before, "state": "final"}, True
        else:
            after = self._joined(table, due, now)
        self._store.streams.update_shadow(report.id, after, due_at=None if closing else due)
        if closing:
            logger.info(
                "stream %s: window %s shadow join final (%s pairs)",
                self.stream.name,
                report.window_key,
                after.get("n_pairs"),
            )
        moved = _figures(before) != _figures(after)
        return _replaced(report, after, None if closing else due) if moved else None

    def _joined(self, table: pa.Table, due: datetime, now: datetime) -> dict[str, Any]:
        stream = self.stream
        assert stream.prediction is not None and stream.record_id is not None
        assert stream.shadow.stream is not None
        # Read before the look-up: a shadow record landing during it counts as new next time.
        mark = self._store.streams.latest_prediction_at(stream.shadow.stream)
        needed = (stream.record_id, stream.prediction)
        if table.num_rows == 0 or not all(c in table.column_names for c in needed):
            ids: list[Any] = []
            predictions: list[Any] = []
        else:
            ids = table.column(stream.record_id).to_pylist()
            predictions = table.column(stream.prediction).to_pylist()
        known = self._store.streams.predictions_for(
            stream.shadow.stream, [str(i) for i in ids if i is not None], until=due
        )
        shadow = [_typed(known.get(str(i)), stream) if i is not None else None for i in ids]
        comparison = compare_columns(stream, predictions, shadow)
        comparison.update(
            stream=stream.shadow.stream,
            state="final" if now >= due else "provisional",
            due_at=due.isoformat(),
            joined_until=None if mark is None else mark.isoformat(),
        )
        return comparison


def _typed(value: str | None, stream: StreamConfig) -> Any:
    if value is None or stream.prediction_kind == "categorical":
        return value
    return float(value)


def _figures(shadow: dict[str, Any]) -> dict[str, Any]:
    """What a reader or a rule sees (not the join's bookkeeping)."""
    return {k: v for k, v in shadow.items() if k not in ("joined_until", "due_at")}


def _replaced(report: DriftReport, shadow: dict[str, Any], due: datetime | None) -> DriftReport:
    return replace(report, shadow=shadow, shadow_due_at=due)
