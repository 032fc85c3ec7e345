"""Performance per segment and group fairness, over one window's labelled records.

**Segments.** The records are grouped by the value of a segment column (``region``,
``device``); the ``max_segments`` most frequent values are kept and the rest grouped as
``__other__`` (a missing value too), so a column with a million distinct values still
gives a bounded report and bounded ``/metrics`` labels. Each segment is scored with the
window's own metrics (``measure``), and per metric the largest gap between two segments
that have enough labels is reported, with the best and the worst segment.

**Fairness.** For a sensitive column (``gender``) and a binary task: demographic parity
difference and ratio and equalized odds difference, fairlearn's, with bootstrap intervals
(``monitor.scoring.fairness``, which suites' runs use too; re-exported here).

Pure: numpy (and fairlearn through ``monitor.scoring.fairness``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.performance.realized import Performance, measure
from monitor.scoring.fairness import FAIRNESS_MEASURES, FairnessMeasure, fairness, from_counts

OTHER = "__other__"

__all__ = [
    "FAIRNESS_MEASURES",
    "OTHER",
    "FairnessMeasure",
    "SegmentGap",
    "bounded_segments",
    "fairness",
    "from_counts",
    "segment_gaps",
    "segments",
]


@dataclass(frozen=True, slots=True)
class SegmentGap:
    """The largest gap of one metric between two segments of one column."""

    column: str
    metric: str
    gap: float
    best: str
    worst: str


def bounded_segments(values: Sequence[Any], max_segments: int) -> list[str]:
    """Each record's segment: its value if among the ``max_segments`` most frequent
    (ties broken by the value, so every run cuts the same), else ``__other__``."""
    counts = Counter(v for v in values if v is not None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    kept = {value for value, _ in ranked[:max_segments]}
    return [str(v) if v in kept else OTHER for v in values]


def segments(
    task: str,
    predictions: Sequence[Any],
    labels: Sequence[Any],
    scores: Sequence[float | None] | None,
    values: Sequence[Any],
    *,
    max_segments: int,
    **settings: Any,
) -> dict[str, Performance]:
    """The performance of each segment of ``values`` (see ``measure`` for ``settings``)."""
    keys = bounded_segments(values, max_segments)
    out = {}
    for key in sorted(set(keys)):
        rows = [i for i, k in enumerate(keys) if k == key]
        out[key] = measure(
            task,  # type: ignore[arg-type]
            [predictions[i] for i in rows],
            [labels[i] for i in rows],
            None if scores is None else [scores[i] for i in rows],
            **settings,
        )
    return out


def segment_gaps(column: str, per_segment: dict[str, Performance]) -> list[SegmentGap]:
    """Per metric, the largest gap between two scored segments (best minus worst, in
    the metric's direction: a gap is never negative)."""
    by_metric: dict[str, list[tuple[float, str, bool]]] = {}
    for key, performance in per_segment.items():
        for m in performance.metrics:
            if np.isfinite(m.value):
                by_metric.setdefault(m.metric, []).append((m.value, key, m.higher_is_better))
    gaps = []
    for metric, rows in by_metric.items():
        if len(rows) < 2:
            continue
        higher = rows[0][2]
        best = max(rows) if higher else min(rows)
        worst = min(rows) if higher else max(rows)
        gaps.append(SegmentGap(column, metric, abs(best[0] - worst[0]), best[1], worst[1]))
    return gaps
