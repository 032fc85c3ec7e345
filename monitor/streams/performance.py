"""Keep each stream window's realized performance up to date as its labels arrive.

When a window is judged for drift, ``PerformanceTracker.record`` scores its predictions
against the labels known then (``monitor.performance``) and stores the result,
``provisional`` until ``label_delay`` after the window's end. ``refresh`` runs after each
evaluation: if labels arrived since a window was last scored (one index look-up, the
stream's newest label), the window is read again and re-scored only when its own labels
changed (a digest of its label column); a window whose label delay has passed becomes
``final``; a final window whose labels changed is ``reopened`` (and final again one
label delay later). Windows judged longer ago than ``reopen_within``, or whose rows
retention dropped, are left as they are.

Each stored row is judged against the reference performance (the reference data scored
the same way, if it carries labels and predictions) or the configured targets.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import pyarrow as pa

from monitor.clock import Clock, utc_now
from monitor.config.streams import IngestSourceConfig, StreamConfig
from monitor.performance import Performance, judge, judge_target, measure
from monitor.performance.groups import fairness, gap_intervals, segment_gaps, segments
from monitor.records import WindowPerformance
from monitor.store.parts import HasStreams
from monitor.streams.windows import Window

logger = logging.getLogger(__name__)

__all__ = ["PerformanceTracker", "window_of"]

Reader = Callable[[Window], pa.Table]


def window_of(row: WindowPerformance) -> Window:
    """The window a stored performance row is about, to read it again."""
    kind, _, span = row.window_key.partition(":")
    if kind == "rows":
        first, end = span.split("-", 1)
        return Window(key=row.window_key, first_row=int(first), end_row=int(end))
    return Window(key=row.window_key, start=row.window_start, end=row.window_end)


class PerformanceTracker:
    """One stream's window performance: scored at judge time, refreshed as labels come."""

    def __init__(
        self,
        stream: StreamConfig,
        store: HasStreams,
        *,
        read: Reader,
        reference: Callable[[], pa.Table],
        clock: Clock = utc_now,
    ) -> None:
        self.stream = stream
        self._store = store
        self._read = read
        self._load_reference = reference
        self._clock = clock
        self._reference: Performance | None = None
        self._reference_loaded = False
        self.newest: str | None = None
        """The key of the stream's newest scored window (the one alerts follow)."""
        self._recorded: list[WindowPerformance] = []

    @property
    def enabled(self) -> bool:
        return self.stream.measures_performance

    def reference(self) -> Performance | None:
        """The reference data's own performance (``None`` without labels and predictions
        in it), computed once per process."""
        if not self._reference_loaded:
            table = self._load_reference()
            stream = self.stream
            needed = [stream.prediction, stream.label]
            if all(name in table.column_names for name in needed):
                scored = self._measure(table)
                self._reference = scored if scored.status == "ok" else None
            self._reference_loaded = True
        return self._reference

    def labels_mark(self) -> datetime | None:
        """The stream's newest label now: read before a window is, so a label that lands
        while it is scored counts as new at the next refresh."""
        return self._store.streams.latest_label_at(self.stream.name)

    def record(
        self, window: Window, report_id: int, table: pa.Table, since: datetime | None
    ) -> WindowPerformance:
        """Score a just-judged window (``table``, read after ``since`` was) and store it."""
        now = self._clock()
        performance = self._measure(table)
        due = (window.end or now) + self.stream.performance.label_delay
        row = WindowPerformance(
            stream=self.stream.name,
            window_key=window.key,
            window_start=window.start,
            window_end=window.end,
            report_id=report_id,
            state="provisional" if now < due else "final",
            status=performance.status,
            n_rows=performance.n_rows,
            n_labelled=performance.n_labelled,
            metrics=_metrics(performance),
            comparison=(),
            worse=False,
            baseline=None,
            due_at=due,
            labels_until=since,
            labels_digest=_digest(table, self.stream.label),
            reopened=0,
            reopened_at=None,
            created_at=now,
            updated_at=now,
            groups=self._groups(table),
        )
        stored = self._store.streams.save_performance(self._judged(row, performance))
        self.newest = window.key
        self._recorded.append(stored)
        return stored

    def take(self) -> list[WindowPerformance]:
        """The rows ``record`` stored since the last call (for the alert rules)."""
        taken, self._recorded = self._recorded, []
        return taken

    def refresh(self) -> list[WindowPerformance]:
        """Re-score the open windows whose labels changed and finalise the due ones;
        return the rows that changed, oldest first."""
        if not self.enabled:
            return []
        now = self._clock()
        settings, name = self.stream.performance, self.stream.name
        since = now - settings.reopen_within
        if isinstance(self.stream.source, IngestSourceConfig):
            since = max(since, now - self.stream.source.retention)
        open_rows = self._store.streams.open_performance(
            name, since=since, limit=self.stream.window.backfill
        )
        if open_rows:
            self.newest = open_rows[-1].window_key
        newest_label = self._store.streams.latest_label_at(name)
        changed = []
        for row in open_rows:
            updated = self._refresh(row, newest_label, now)
            if updated is None:
                continue
            stored = self._store.streams.save_performance(updated)
            if _moved(row, stored):  # not just "labels read up to here"
                changed.append(stored)
        return changed

    def _refresh(
        self, row: WindowPerformance, newest_label: datetime | None, now: datetime
    ) -> WindowPerformance | None:
        fresh = newest_label is not None and (
            row.labels_until is None or newest_label > row.labels_until
        )
        if fresh:
            table = self._read(window_of(row))
            digest = _digest(table, self.stream.label)
            # Fewer rows than were scored: retention dropped some; keep what was scored.
            if digest != row.labels_digest and table.num_rows >= row.n_rows:
                return self._rescored(row, table, digest, newest_label, now)
            row = replace(row, labels_until=newest_label)
        if row.state != "final" and now >= row.due_at:
            return replace(row, state="final", updated_at=now)
        return row if fresh else None

    def _rescored(
        self,
        row: WindowPerformance,
        table: pa.Table,
        digest: str,
        newest_label: datetime | None,
        now: datetime,
    ) -> WindowPerformance:
        performance = self._measure(table)
        reopen = row.state == "final"
        due = now + self.stream.performance.label_delay if reopen else row.due_at
        if reopen:
            logger.info(
                "stream %s: window %s reopened by late labels (%d -> %d labelled)",
                row.stream,
                row.window_key,
                row.n_labelled,
                performance.n_labelled,
            )
        state = "reopened" if reopen or row.state == "reopened" else "provisional"
        rescored = replace(
            row,
            state="final" if now >= due else state,
            status=performance.status,
            n_rows=performance.n_rows,
            n_labelled=performance.n_labelled,
            metrics=_metrics(performance),
            due_at=due,
            labels_until=newest_label,
            labels_digest=digest,
            reopened=row.reopened + int(reopen),
            reopened_at=now if reopen else row.reopened_at,
            updated_at=now,
            groups=self._groups(table),
        )
        return self._judged(rescored, performance)

    def _judged(self, row: WindowPerformance, performance: Performance) -> WindowPerformance:
        settings = self.stream.performance
        if performance.status != "ok":
            return replace(row, comparison=(), worse=False, baseline=None)
        reference = self.reference()
        if reference is not None:
            verdicts, baseline = judge(performance, reference, alpha=settings.alpha), "reference"
        elif settings.target:
            verdicts = judge_target(performance, settings.target, alpha=settings.alpha)
            baseline = "target"
        else:
            return replace(row, comparison=(), worse=False, baseline=None)
        comparison = tuple(_finite(asdict(v)) for v in verdicts)
        return replace(
            row, comparison=comparison, worse=any(v.worse for v in verdicts), baseline=baseline
        )

    def _groups(self, table: pa.Table) -> dict[str, Any]:
        """Per segment the metrics and the largest gaps; the fairness measures."""
        stream = self.stream
        columns = list(stream.segments)
        if stream.fairness is not None and stream.fairness.groups not in columns:
            columns.append(stream.fairness.groups)
        if not columns or table.num_rows == 0:
            return {}
        inputs = self._inputs(table)
        out: dict[str, Any] = {"segments": [], "gaps": [], "fairness": []}
        for column in columns:
            values = table.column(column).to_pylist()
            per_segment = segments(
                stream.task, *inputs, values, max_segments=stream.max_segments, **self._settings()
            )
            for key, performance in per_segment.items():
                out["segments"].append(
                    {
                        "column": column,
                        "segment": key,
                        "status": performance.status,
                        "n_labelled": performance.n_labelled,
                        "metrics": list(_metrics(performance)),
                    }
                )
            gaps = gap_intervals(
                segment_gaps(column, per_segment),
                *inputs,
                values,
                max_segments=stream.max_segments,
                **self._settings(),
            )
            out["gaps"].extend(_finite(asdict(g)) for g in gaps)
        if stream.fairness is not None:
            measures = fairness(
                inputs[0],
                inputs[1],
                table.column(stream.fairness.groups).to_pylist(),
                positive=stream.fairness.positive,
                seed=stream.performance.seed,
            )
            out["fairness"] = [
                {"groups": stream.fairness.groups, **_finite(asdict(m))}
                for m in measures
                if m.measure in stream.fairness.metrics
            ]
        return out

    def _inputs(self, table: pa.Table) -> tuple[list[Any], list[Any], list[Any] | None]:
        stream, settings = self.stream, self.stream.performance
        assert stream.prediction is not None and stream.label is not None
        if table.num_rows == 0:
            return [], [], None
        scores = None if settings.score is None else table.column(settings.score).to_pylist()
        return (
            table.column(stream.prediction).to_pylist(),
            table.column(stream.label).to_pylist(),
            scores,
        )

    def _settings(self) -> dict[str, Any]:
        settings = self.stream.performance
        return {
            "metrics": settings.metric_specs(self.stream.task),
            "min_labels": settings.min_labels,
            "interval_rows": settings.interval_rows,
            "seed": settings.seed,
        }

    def _measure(self, table: pa.Table) -> Performance:
        return measure(self.stream.task, *self._inputs(table), **self._settings())


def _moved(before: WindowPerformance, after: WindowPerformance) -> bool:
    """Whether a refresh changed what a reader or an alert rule sees."""
    fields = ("state", "status", "n_labelled", "metrics", "comparison", "groups", "reopened")
    return any(getattr(before, name) != getattr(after, name) for name in fields)


def _metrics(performance: Performance) -> tuple[dict[str, object], ...]:
    return tuple(
        _finite({"metric": m.metric, "value": m.value, "lower": m.lower, "upper": m.upper})
        for m in performance.metrics
    )


def _finite(row: dict[str, object]) -> dict[str, object]:
    """JSON-safe: a NaN (an undefined metric) is stored as null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def _digest(table: pa.Table, label: str | None) -> str:
    """A digest of the window's label column: equal digests, equal labels."""
    digest = hashlib.sha256()
    if label is None or label not in table.column_names or table.num_rows == 0:
        return digest.hexdigest()
    for value in table.column(label).to_pylist():
        digest.update(b"\x00" if value is None else repr(value).encode() + b"\x1f")
    return digest.hexdigest()
