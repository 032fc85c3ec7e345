"""Performance per segment and group fairness, over one window's labelled records.

**Segments.** The records are grouped by the value of a segment column (``region``,
``device``); the ``max_segments`` most frequent values are kept and the rest grouped as
``__other__`` (a missing value too), so a column with a million distinct values still
gives a bounded report and bounded ``/metrics`` labels. Each segment is scored with the
window's own metrics (``measure``), and per metric the largest gap between two segments
that have enough labels is reported, with the best and the worst segment and a 95%
interval (``gap_intervals``): a seeded bootstrap over the records of those two segments,
resampled together as the fairness intervals resample records across groups, recomputing
the best segment's metric minus the worst's. The pair is the one the point gap names, so
the interval says how sure the difference between those two segments is: a lower end at
or below 0 means the gap may be noise. (Re-choosing the largest gap in every resample
would bias the interval upwards: with no real difference the largest of several noisy
gaps is still positive.)

**Fairness.** For a sensitive column (``gender``) and a binary task: demographic parity
difference and ratio and equalized odds difference, fairlearn's, with bootstrap intervals
(``monitor.scoring.fairness``, which suites' runs use too; re-exported here).

Pure: numpy (and fairlearn through ``monitor.scoring.fairness``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from monitor.performance.realized import Performance, measure, subsampled_interval
from monitor.scoring import Metric, build_metric
from monitor.scoring.fairness import FAIRNESS_MEASURES, FairnessMeasure, fairness, from_counts
from monitor.scoring.intervals import RESAMPLES

OTHER = "__other__"

__all__ = [
    "FAIRNESS_MEASURES",
    "OTHER",
    "FairnessMeasure",
    "SegmentGap",
    "bounded_segments",
    "fairness",
    "from_counts",
    "gap_intervals",
    "segment_gaps",
    "segments",
]


@dataclass(frozen=True, slots=True)
class SegmentGap:
    """The largest gap of one metric between two segments of one column, with its 95%
    interval (``None`` until ``gap_intervals``, or when the bootstrap had too few
    defined resamples)."""

    column: str
    metric: str
    gap: float
    best: str
    worst: str
    lower: float | None = None
    upper: float | None = None


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


def gap_intervals(
    gaps: Sequence[SegmentGap],
    predictions: Sequence[Any],
    labels: Sequence[Any],
    scores: Sequence[float | None] | None,
    values: Sequence[Any],
    *,
    max_segments: int,
    metrics: Sequence[str | dict[str, Any]],
    interval_rows: int = 20_000,
    resamples: int = RESAMPLES,
    seed: int = 0,
    **_: Any,
) -> list[SegmentGap]:
    """``gaps`` (of the column ``values``, from ``segment_gaps``) with their 95%
    intervals, over the same records and settings ``segments`` scored (extra settings,
    such as ``min_labels``, are accepted and ignored). Above ``interval_rows`` records the
    bootstrap runs on a seeded subsample, scaled as the window's own intervals are."""
    keys = np.asarray(bounded_segments(values, max_segments), dtype=object)
    scored = np.fromiter(
        (y is not None and p is not None for p, y in zip(predictions, labels, strict=True)),
        dtype=bool,
        count=len(keys),
    )
    with_score = scored & np.fromiter(
        (scores is not None and scores[i] is not None for i in range(len(keys))),
        dtype=bool,
        count=len(keys),
    )
    by_label = {m.label: m for m in (build_metric(spec) for spec in metrics)}
    inputs = (predictions, labels, scores)
    out = []
    for gap in gaps:
        metric = by_label.get(gap.metric)
        if metric is None:
            out.append(gap)
            continue
        mask = with_score if metric.needs_scores else scored
        best = np.flatnonzero((keys == gap.best) & mask)
        rows = np.concatenate([best, np.flatnonzero((keys == gap.worst) & mask)])

        build = _builder(metric, rows, len(best), inputs)
        lower, upper = subsampled_interval(
            build, len(rows), gap.gap, seed=seed, rows=interval_rows, resamples=resamples
        )
        out.append(replace(gap, lower=lower, upper=upper))
    return out


_Records = tuple[list[Any], list[Any], list[Any] | None]


def _builder(
    metric: Metric, rows: np.ndarray, n_best: int, inputs: tuple[Any, Any, Any]
) -> Callable[[np.ndarray | None], Callable[[np.ndarray], float]]:
    """What ``subsampled_interval`` builds the gap's statistic with: over ``rows`` (the
    best segment's ``n_best`` records first), or over the subsample of them it drew (so
    a million-record window prepares only the subsample's records)."""

    def build(sample: np.ndarray | None) -> Callable[[np.ndarray], float]:
        chosen = rows if sample is None else rows[sample]
        in_best = n_best if sample is None else int(np.searchsorted(sample, n_best))
        best, worst = _records(chosen[:in_best], *inputs), _records(chosen[in_best:], *inputs)
        return _gap_statistic(metric, best, worst)

    return build


def _records(
    rows: np.ndarray,
    predictions: Sequence[Any],
    labels: Sequence[Any],
    scores: Sequence[float | None] | None,
) -> _Records:
    return (
        [predictions[i] for i in rows],
        [labels[i] for i in rows],
        None if scores is None else [scores[i] for i in rows],
    )


def _gap_statistic(
    metric: Metric, best: _Records, worst: _Records
) -> Callable[[np.ndarray], float]:
    """A function of indices into the two segments' records laid end to end (the best
    segment's first): the best's metric minus the worst's, in the metric's direction.
    Each side is the metric's own statistic over its segment, as ``measure`` scores it."""
    of_best, of_worst = metric.statistic(*best), metric.statistic(*worst)
    n_best = len(best[0])
    sign = 1.0 if metric.higher_is_better else -1.0

    def statistic(idx: np.ndarray) -> float:
        side = idx < n_best
        if side.all() or not side.any():  # a resample without one of the two segments
            return float("nan")
        return sign * (float(of_best(idx[side])) - float(of_worst(idx[~side] - n_best)))

    return statistic
