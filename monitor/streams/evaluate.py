"""Judge a stream's window against its reference and store the drift report.

``StreamEvaluator`` owns one stream's reference profile: it is looked up in the store by
the reference's hash, computed and stored only when missing, and then kept in memory (with
the calibrated thresholds the engine caches per window size), so a profile is never
recomputed per window. ``run_latest()`` finds the latest complete window, reads it (from
the store, files, or SQL with push-down), compares it, renders the optional HTML report
and stores the result, once per window. It blocks: the daemon runs it in a thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict
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
from monitor.errors import SourceError
from monitor.records import DriftReport, NewDriftReport
from monitor.store import Store, redact_url
from monitor.streams import sources
from monitor.streams.pushdown import pushdown_counts
from monitor.streams.specs import column_specs, drift_settings
from monitor.streams.windows import Window, latest_row_window, latest_time_window

logger = logging.getLogger(__name__)

__all__ = [
    "StreamEvaluator",
    "column_specs",
    "drift_settings",
    "load_reference",
    "reference_hash",
    "result_columns",
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


def load_reference(stream: StreamConfig, store: Store | None) -> pa.Table:
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


class StreamEvaluator:
    """Turns one stream's windows into stored drift reports."""

    def __init__(self, stream: StreamConfig, store: Store, *, clock: Clock = utc_now) -> None:
        self.stream = stream
        self._store = store
        self._clock = clock
        self._profile: tuple[ReferenceProfile, int] | None = None
        # Made on first use: a missing database driver fails that stream's windows (and
        # says so in the log), not the daemon's start.
        self._sql_engine: Engine | None = None

    def profile(self) -> tuple[ReferenceProfile, int]:
        """The reference profile and its stored id: from memory, else the store, else
        computed from the reference and stored."""
        if self._profile is not None:
            return self._profile
        key = reference_hash(self.stream)
        stored = self._store.get_profile(self.stream.name, key)
        if stored is not None:
            self._profile = (ReferenceProfile.from_bytes(stored.profile), stored.id)
            return self._profile
        table = load_reference(self.stream, self._store)
        reference = sources.to_columns(table, self.stream)
        profile = build_profile(reference, column_specs(self.stream), drift_settings(self.stream))
        profile_id = self._store.save_profile(
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
        counts = {c.stream: c.n_rows for c in self._store.stream_counts()}
        return latest_row_window(counts.get(self.stream.name, 0), window.rows)

    def run_latest(self) -> DriftReport | None:
        """Judge the latest complete window; ``None`` if there is none yet or it already
        has a report."""
        window = self.latest_window()
        if window is None:
            return None
        if any(
            r.window_key == window.key
            for r in self._store.list_drift_reports(self.stream.name, limit=5)
        ):
            return None
        return self.evaluate(window)

    def evaluate(self, window: Window) -> DriftReport | None:
        """Judge ``window`` and store its report; ``None`` if another evaluation stored
        one for the same window first."""
        profile, profile_id = self.profile()
        calibrated = len(profile.thresholds)
        result, current = self._compare(profile, window)
        if len(profile.thresholds) > calibrated:  # a new window size: keep it for restarts
            self._store.update_profile(self.stream.name, profile_id, profile.to_bytes())
        html = None
        if self.stream.report.html and current is not None and result.status == "ok":
            html = self._render(result, current, window.key)
        report_id = self._store.add_drift_report(
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
            )
        )
        return None if report_id is None else self._store.get_drift_report(report_id)

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
            table = sources.read_glob(source.glob, ts, window.start, window.end)
            return table if table is not None else pa.table({})
        return sources.read_sql(
            self._engine(source),
            source.query,
            columns=[name for name, _ in self.stream.drift_columns()],
            timestamp=ts,
            start=window.start,
            end=window.end,
        )

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
        known = self._store.labels_for(stream.name, [i for i in ids if i is not None])
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
