"""Judge a stream's windows against its reference and store the drift reports.

``StreamEvaluator`` owns one stream's reference profile: it is looked up in the store by
the reference's hash, computed and stored only when missing, and then kept in memory (with
the calibrated thresholds the engine caches per window size), so a profile is never
recomputed per window. ``backlog()`` lists the complete windows after the stream's
watermark, oldest first; ``evaluate()`` reads one (from the store, files, or SQL with
push-down), compares it, renders the optional HTML report and stores the result. Both
block: the daemon runs them in a thread.

The watermark is the newest stored report of the stream (of its windowing's kind, rows
or time), not a row of its own: every
judged window has a report (``insufficient_data`` ones too), reports are stored in window
order and never deleted, and the unique (stream, window key) index already refuses a
second report of a window, so the reports are an exact watermark that a restart, a second
job run or a second replica cannot disagree with. Reading it is one index look-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine

from monitor.clock import Clock, utc_now
from monitor.config.streams import (
    FilesSourceConfig,
    IngestSourceConfig,
    SqlSourceConfig,
    StreamConfig,
)
from monitor.drift import (
    DriftResult,
    ReferenceProfile,
    build_profile,
    compare,
    compare_counts,
)
from monitor.drift.segments import SegmentDrift
from monitor.errors import SourceError
from monitor.records import DriftReport, NewDriftReport
from monitor.store import redact_url
from monitor.store.parts import HasStreams
from monitor.streams import sources
from monitor.streams.performance import PerformanceTracker
from monitor.streams.pushdown import pushdown_counts
from monitor.streams.segments import SegmentDriftTracker
from monitor.streams.shadow import ShadowJoin, compare_columns
from monitor.streams.specs import column_specs, drift_settings
from monitor.streams.windows import (
    Plan,
    Window,
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

logger = logging.getLogger(__name__)

__all__ = [
    "Backlog",
    "StreamEvaluator",
    "column_specs",
    "drift_settings",
    "load_reference",
    "reference_hash",
    "result_columns",
    "segment_entries",
]


def reference_hash(stream: StreamConfig) -> str:
    """Identifies the reference data and everything the profile depends on (columns,
    methods, thresholds): a change to any of them gives a new profile."""
    ref = stream.reference
    digest = hashlib.sha256()
    if ref.file is not None:
        digest.update(ref.file.read_bytes())
    elif ref.query is not None and ref.url is not None:
        digest.update(f"{redact_url(ref.url)}\n{ref.query}".encode())
    else:
        digest.update(f"{ref.start}/{ref.end}".encode())
    settings = {
        "columns": stream.drift_columns(),
        "methods": stream.methods.model_dump(mode="json"),
        "thresholds": stream.thresholds.model_dump(mode="json"),
        "min_rows": stream.window.min_rows,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def load_reference(stream: StreamConfig, store: HasStreams | None) -> pa.Table:
    """The stream's reference data as a table."""
    ref = stream.reference
    if ref.file is not None:
        return sources.read_file(ref.file)
    if ref.query is not None and ref.url is not None:
        engine = sources.sql_engine(ref.url)
        try:
            return sources.read_sql(engine, ref.query)
        finally:
            engine.dispose()
    if store is None or ref.start is None or ref.end is None:
        raise SourceError("a past-window reference needs the store")
    return sources.read_store_window(store, stream.name, ref.start, ref.end, stream.timestamp)


def result_columns(result: DriftResult) -> tuple[dict[str, Any], ...]:
    """The per-column results as JSON-safe dicts (non-finite numbers become null)."""
    return tuple(_json_safe(asdict(column)) for column in result.columns)


def segment_entries(drifts: Sequence[SegmentDrift]) -> tuple[dict[str, Any], ...]:
    """The per-segment results as the report's JSON ``segments`` list."""
    out = []
    for d in drifts:
        result = d.result if d.status == "ok" else None
        out.append(
            _json_safe(
                {
                    "column": d.column,
                    "segment": d.segment,
                    "status": d.status,
                    "n_rows": d.n_rows,
                    "reference_rows": d.reference_rows,
                    "drift_share": d.drift_share,
                    "dataset_drifted": bool(result and result.dataset_drifted),
                    "largest": d.largest,
                    "drifted_columns": list(result.drifted_columns) if result else [],
                    "columns": list(result_columns(result)) if result else [],
                }
            )
        )
    return tuple(out)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return value


def _values(table: pa.Table, name: str) -> list[Any]:
    """A column's values; all missing if the window's rows lack it (rows ingested before
    the column was added to the schema)."""
    if name in table.column_names:
        return list(table.column(name).to_pylist())
    return [None] * table.num_rows


_Span = tuple[int, int, int | None, Callable[[int], Window]]
"""First window to judge, end (exclusive), the first whose rows are all kept, a maker."""


@dataclass(frozen=True, slots=True)
class Backlog:
    """The windows to judge now, oldest first, and how many older ones were dropped
    (counted once: a later backlog does not count them again)."""

    windows: tuple[Window, ...]
    dropped: int = 0


class StreamEvaluator:
    """Turns one stream's windows into stored drift reports."""

    def __init__(self, stream: StreamConfig, store: HasStreams, *, clock: Clock = utc_now) -> None:
        self.stream = stream
        self._store = store
        self._clock = clock
        self._profile: tuple[ReferenceProfile, int] | None = None
        # Made on first use: a missing database driver fails that stream's windows (and
        # says so in the log), not the daemon's start.
        self._sql_engine: Engine | None = None
        # Windows before this number were already reported dropped.
        self._dropped_until: int | None = None
        # A files source is read once per backlog, for the whole span, then cut per window.
        self._files: tuple[datetime, datetime, pa.Table | None] | None = None
        self._read_until: datetime | None = None
        self.performance = PerformanceTracker(
            stream,
            store,
            read=self._performance_rows,
            reference=lambda: load_reference(self.stream, self._store),
            clock=clock,
        )
        self.shadow = ShadowJoin(stream, store, read=self._read, clock=clock)
        self.segments = SegmentDriftTracker(
            stream,
            store,
            reference_key=lambda: reference_hash(self.stream),
            reference=lambda: load_reference(self.stream, self._store),
            clock=clock,
        )

    def profile(self) -> tuple[ReferenceProfile, int]:
        """The reference profile and its stored id: from memory, else the store, else
        computed from the reference and stored."""
        if self._profile is not None:
            return self._profile
        key = reference_hash(self.stream)
        stored = self._store.streams.get_profile(self.stream.name, key)
        if stored is not None:
            self._profile = (ReferenceProfile.from_bytes(stored.profile), stored.id)
            return self._profile
        table = load_reference(self.stream, self._store)
        reference = sources.to_columns(table, self.stream)
        profile = build_profile(reference, column_specs(self.stream), drift_settings(self.stream))
        profile_id = self._store.streams.save_profile(
            self.stream.name,
            reference_hash=key,
            at=self._clock(),
            n_rows=profile.n_rows,
            profile=profile.to_bytes(),
        )
        logger.info("stream %s: profiled %d reference rows", self.stream.name, profile.n_rows)
        self._profile = (profile, profile_id)
        return self._profile

    def latest_window(self) -> Window | None:
        """The latest complete window, or ``None`` before the first row window is full."""
        window = self.stream.window
        if window.every is not None:
            return latest_time_window(self._clock(), window.every)
        assert window.rows is not None
        counts = {c.stream: c.n_rows for c in self._store.streams.stream_counts()}
        return latest_row_window(counts.get(self.stream.name, 0), window.rows)

    def backlog(self, *, queued: str | None = None) -> Backlog:
        """Every complete window after the watermark, oldest first, but none whose rows
        retention dropped and at most the newest ``window.backfill``. Without a watermark
        (a new stream) a row-window stream starts at row 0, a time-window ingest stream at
        its first retained row, and a files or SQL stream, whose history may be long, at
        its latest complete window. ``queued``: the key of the newest window already
        queued to be judged (the daemon's window queue), read before the reports are:
        the backlog starts after it if it is newer than the newest report."""
        window = self.stream.window
        last = self._store.streams.last_window_key(
            self.stream.name, "rows" if window.rows else "time"
        )
        after = None if last is None else after_key(last, rows=window.rows, every=window.every)
        pending = (
            None if queued is None else after_key(queued, rows=window.rows, every=window.every)
        )
        if pending is not None:
            after = pending if after is None else max(after, pending)
        start, end, floor, make = self._row_span(after) if window.rows else self._time_span(after)
        todo = plan(start, end, backfill=window.backfill, floor=floor)
        dropped = self._note_dropped(todo, floor, make)
        windows = tuple(make(i) for i in range(todo.first, todo.end))
        self._files = None  # new files may have landed since the last backlog
        self._read_until = windows[-1].end if windows else None
        return Backlog(windows, dropped)

    def _row_span(self, after: int | None) -> _Span:
        rows = self.stream.window.rows
        assert rows is not None
        extent = self._store.streams.stream_extent(self.stream.name)
        end = 0 if extent is None else extent.end_row // rows
        floor = 0 if extent is None else row_index(extent.first_row, rows)
        # Row numbers start at 0 and are never reused: rows before the first retained
        # one were ingested, and their windows never judged if there is no watermark.
        return (0 if after is None else after), end, floor, partial(row_window, rows=rows)

    def _time_span(self, after: int | None) -> _Span:
        every, source = self.stream.window.every, self.stream.source
        assert every is not None
        now = self._clock()
        end = complete_time_windows(now, every)
        make = partial(time_window, every=every)
        if not isinstance(source, IngestSourceConfig):
            return (end - 1 if after is None else after), end, None, make
        floor = time_index(now - source.retention, every)
        if after is None:
            extent = self._store.streams.stream_extent(self.stream.name)
            after = end - 1 if extent is None else complete_time_windows(extent.first_ts, every)
        return after, end, floor, make

    def _note_dropped(self, todo: Plan, floor: int | None, make: Callable[[int], Window]) -> int:
        """Log the windows ``todo`` drops, once, and return how many were new."""
        since = todo.dropped_from
        if self._dropped_until is not None:
            since = max(since, self._dropped_until)
        self._dropped_until = max(todo.first, self._dropped_until or todo.first)
        count = max(0, todo.first - since)
        if count:
            why = (
                "their rows are past the retention"
                if floor is not None and floor >= todo.first
                else f"more than backfill = {self.stream.window.backfill} windows were pending"
            )
            logger.warning(
                "stream %s: %d window(s) from %s to %s not judged: %s",
                self.stream.name,
                count,
                make(since).key,
                make(todo.first - 1).key,
                why,
            )
        return count

    def run_pending(self) -> list[DriftReport]:
        """Judge the backlog in order; stop at the first window another evaluation (a
        second replica) stored first: it is judging the rest."""
        reports = []
        for window in self.backlog().windows:
            report = self.evaluate(window)
            if report is None:
                break
            reports.append(report)
        return reports

    def read_until(self, end: datetime | None) -> None:
        """The backlog this replica judges ends at ``end`` (the newest queued window's):
        a files source reads up to there once, and cuts each window from it (a new end
        is a new backlog: files may have landed since the last read)."""
        if end != self._read_until:
            self._files = None
        self._read_until = end

    def evaluate(self, window: Window) -> DriftReport | None:
        """Judge ``window`` and store its report; ``None`` if another evaluation stored
        one for the same window first."""
        profile, profile_id = self.profile()
        calibrated = len(profile.thresholds)
        tracked = self.performance.enabled
        labels_mark = self.performance.labels_mark() if tracked else None
        result, current = self._compare(profile, window)
        if len(profile.thresholds) > calibrated:  # a new window size: keep it for restarts
            self._store.streams.update_profile(self.stream.name, profile_id, profile.to_bytes())
        html = None
        if self.stream.report.html and current is not None and result.status == "ok":
            html = self._render(result, current, window.key)
        segments = self._segments(result, current)
        shadow, shadow_due_at = self._shadow(window, current)
        report_id = self._store.streams.add_drift_report(
            NewDriftReport(
                stream=self.stream.name,
                window_key=window.key,
                window_start=window.start,
                window_end=window.end,
                created_at=self._clock(),
                status=result.status,
                n_rows=result.n_rows,
                drift_share=result.drift_share if result.status == "ok" else None,
                dataset_drifted=result.dataset_drifted,
                columns=result_columns(result),
                profile_id=profile_id,
                html=html,
                segments=segments,
                shadow=shadow,
                shadow_due_at=shadow_due_at,
            )
        )
        if report_id is None:
            return None
        if tracked and result.status == "ok":
            source = self.stream.source
            if current is None or (isinstance(source, SqlSourceConfig) and source.pushdown):
                current = self._performance_rows(window)  # not the picture's sample
            self.performance.record(window, report_id, current, labels_mark)
        return self._store.streams.get_drift_report(report_id)

    def _segments(
        self, result: DriftResult, current: pa.Table | None
    ) -> tuple[dict[str, Any], ...]:
        """Drift per segment, from the window's raw rows: a push-down SQL window (counts
        only, ``current`` at most the picture's sample) and a window too small to judge
        as a whole get none."""
        source = self.stream.source
        pushed = isinstance(source, SqlSourceConfig) and source.pushdown
        if not self.segments.enabled or pushed or current is None or result.status != "ok":
            return ()
        return segment_entries(self.segments.measure(current))

    def _shadow(
        self, window: Window, current: pa.Table | None
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        """The window's shadow comparison (stored with its report) and, joined to a
        shadow stream, when its join closes: from the rows just read, or (push-down SQL)
        the two columns."""
        stream = self.stream
        if self.shadow.enabled:
            return self.shadow.compare(window, self._read(window) if current is None else current)
        if stream.shadow_prediction is None or stream.prediction is None:
            return None, None
        source = stream.source
        if current is None or (isinstance(source, SqlSourceConfig) and source.pushdown):
            assert window.start and window.end and isinstance(source, SqlSourceConfig)
            current = sources.read_sql(
                self._engine(source),
                source.query,
                columns=[stream.prediction, stream.shadow_prediction],
                timestamp=stream.timestamp,
                start=window.start,
                end=window.end,
            )
        shadow = _values(current, stream.shadow_prediction)
        return compare_columns(stream, _values(current, stream.prediction), shadow), None

    def _performance_rows(self, window: Window) -> pa.Table:
        """The window's rows with their labels, as scoring reads them: from the window's
        source, or (a push-down SQL window) its prediction, label and score columns."""
        source = self.stream.source
        if isinstance(source, SqlSourceConfig) and source.pushdown:
            assert window.start and window.end
            stream = self.stream
            groups = [stream.fairness.groups] if stream.fairness is not None else []
            wanted = [stream.prediction, stream.label, stream.performance.score]
            wanted += [c for c in (*stream.segments, *groups) if c not in wanted]
            return sources.read_sql(
                self._engine(source),
                source.query,
                columns=[name for name in wanted if name is not None],
                timestamp=self.stream.timestamp,
                start=window.start,
                end=window.end,
            )
        return self._read(window)

    def preview(self, window: Window) -> DriftResult:
        """Judge ``window`` without storing anything (``monitor drift`` without files)."""
        return self._compare(self.profile()[0], window)[0]

    def _compare(
        self, profile: ReferenceProfile, window: Window
    ) -> tuple[DriftResult, pa.Table | None]:
        source = self.stream.source
        if isinstance(source, SqlSourceConfig) and source.pushdown:
            assert window.start and window.end
            counts, n_rows = pushdown_counts(
                self._engine(source),
                source.query,
                profile=profile,
                timestamp=self.stream.timestamp,
                start=window.start,
                end=window.end,
            )
            sample = None
            if self.stream.report.html:  # a bounded sample for the picture only
                sample = sources.read_sql(
                    self._engine(source),
                    source.query,
                    columns=[name for name, _ in self.stream.drift_columns()],
                    timestamp=self.stream.timestamp,
                    start=window.start,
                    end=window.end,
                    limit=self.stream.report.sample_rows,
                )
            return compare_counts(profile, counts, n_rows), sample
        table = self._read(window)
        return compare(profile, sources.to_columns(table, self.stream)), table

    def _read(self, window: Window) -> pa.Table:
        source, ts = self.stream.source, self.stream.timestamp
        if isinstance(source, IngestSourceConfig):
            return self._join_labels(self._read_ingested(window))
        assert window.start and window.end
        if isinstance(source, FilesSourceConfig):
            return self._read_files(source, window.start, window.end)
        return sources.read_sql(
            self._engine(source),
            source.query,
            columns=[name for name, _ in self.stream.stored_columns()],
            timestamp=ts,
            start=window.start,
            end=window.end,
        )

    def _read_files(self, source: FilesSourceConfig, start: datetime, end: datetime) -> pa.Table:
        """The files' rows in ``[start, end)``, from one read of the backlog's span."""
        cached = self._files
        if cached is None or not (cached[0] <= start and end <= cached[1]):
            until = max(end, self._read_until or end)
            table = sources.read_glob(source.glob, self.stream.timestamp, start, until)
            cached = self._files = (start, until, table)
        table = cached[2]
        if table is None:
            return pa.table({})
        if (cached[0], cached[1]) == (start, end):
            return table
        return sources.in_window(table, self.stream.timestamp, start, end)

    def _read_ingested(self, window: Window) -> pa.Table:
        if window.first_row is not None and window.end_row is not None:
            return sources.read_store_rows(
                self._store, self.stream.name, window.first_row, window.end_row
            )
        assert window.start and window.end
        return sources.read_store_window(
            self._store, self.stream.name, window.start, window.end, self.stream.timestamp
        )

    def _join_labels(self, table: pa.Table) -> pa.Table:
        """Fill the label column from labels that arrived later, by record id (a late
        label wins over one sent with the record)."""
        stream = self.stream
        if stream.label is None or stream.record_id is None or table.num_rows == 0:
            return table
        ids = table.column(stream.record_id).to_pylist()
        known = self._store.streams.labels_for(stream.name, [i for i in ids if i is not None])
        if not known:
            return table
        sent = table.column(stream.label).to_pylist()
        merged = [known.get(i, v) if i is not None else v for i, v in zip(ids, sent, strict=True)]
        if stream.label_kind == "numerical":
            array = pa.array([None if v is None else float(v) for v in merged], pa.float64())
        else:
            array = pa.array([None if v is None else str(v) for v in merged], pa.string())
        index = table.column_names.index(stream.label)
        return table.set_column(index, stream.label, array)

    def _render(self, result: DriftResult, current: pa.Table, key: str) -> str | None:
        from monitor.streams.html import render_report

        try:
            reference = load_reference(self.stream, self._store)
            return render_report(self.stream, result, reference, current, window=key)
        except Exception as exc:  # a report is a nicety: never lose the drift result for it
            logger.warning("stream %s: HTML report failed: %s", self.stream.name, exc)
            return None

    def close(self) -> None:
        """Release the connections to the stream's database, if any."""
        if self._sql_engine is not None:
            self._sql_engine.dispose()
            self._sql_engine = None

    def _engine(self, source: SqlSourceConfig) -> Engine:
        if self._sql_engine is None:
            self._sql_engine = sources.sql_engine(source.url)
        return self._sql_engine
