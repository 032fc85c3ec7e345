"""Performance per segment and group fairness, over one window's labelled records.

**Segments.** The records are grouped by the value of a segment column (``region``,
``device``); the ``max_segments`` most frequent values are kept and the rest grouped as
``__other__`` (a missing value too), so a column with a million distinct values still
gives a bounded report and bounded ``/metrics`` labels. Each segment is scored with the
window's own metrics (``measure``), and per metric the largest gap between two segments
that have enough labels is reported, with the best and the worst segment.

**Fairness.** For a sensitive column (``gender``) and a binary task (``positive`` is the
favourable outcome): demographic parity difference and ratio (selection rates across
groups) and equalized odds difference (the larger of the true- and false-positive rate
gaps across groups). The values are fairlearn's own functions; their 95% intervals are a
seeded bootstrap over records that recomputes the same quantities from per-group counts
(fairlearn through pandas costs milliseconds a call, a thousand resamples seconds; a test
holds the count version equal to fairlearn on resampled data).

Pure: numpy and fairlearn (imported when a measure is computed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.performance.realized import Performance, measure
from monitor.scoring.classification import normalise_label
from monitor.scoring.intervals import RESAMPLES, bootstrap_interval

OTHER = "__other__"
FAIRNESS_MEASURES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)

__all__ = [
    "FAIRNESS_MEASURES",
    "OTHER",
    "FairnessMeasure",
    "SegmentGap",
    "bounded_segments",
    "fairness",
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


@dataclass(frozen=True, slots=True)
class FairnessMeasure:
    """One group fairness measure with its 95% interval."""

    measure: str
    value: float
    lower: float | None
    upper: float | None


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


def fairness(
    predictions: Sequence[Any],
    labels: Sequence[Any],
    groups: Sequence[Any],
    *,
    positive: str,
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> list[FairnessMeasure]:
    """Demographic parity difference and ratio and equalized odds difference over the
    records with a label, a prediction and a group."""
    from fairlearn import metrics as fm

    keep = [
        i
        for i, (p, y, g) in enumerate(zip(predictions, labels, groups, strict=True))
        if p is not None and y is not None and g is not None
    ]
    if len(keep) < 2:
        return []
    positive = normalise_label(positive)
    y_pred = np.array([normalise_label(predictions[i]) == positive for i in keep], dtype=int)
    y_true = np.array([normalise_label(labels[i]) == positive for i in keep], dtype=int)
    names = [str(groups[i]) for i in keep]
    code = {name: j for j, name in enumerate(sorted(set(names)))}
    group = np.array([code[n] for n in names])
    values = {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y_true, y_pred, sensitive_features=names
        ),
        "demographic_parity_ratio": fm.demographic_parity_ratio(
            y_true, y_pred, sensitive_features=names
        ),
        "equalized_odds_difference": fm.equalized_odds_difference(
            y_true, y_pred, sensitive_features=names
        ),
    }
    out = []
    for name in FAIRNESS_MEASURES:

        def stat(idx: np.ndarray, name: str = name) -> float:
            return from_counts(name, y_true[idx], y_pred[idx], group[idx], len(code))

        lower, upper = bootstrap_interval(stat, len(keep), seed=seed, resamples=resamples)
        out.append(FairnessMeasure(name, float(values[name]), lower, upper))
    return out


def from_counts(
    name: str, y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, size: int
) -> float:
    """The same measure from per-group counts (what the bootstrap recomputes); groups
    absent from a resample are left out, as fairlearn leaves out absent groups."""
    present = np.bincount(group, minlength=size) > 0
    if name.startswith("demographic_parity"):
        rates = _rates(y_pred, group, size, present)
        if name.endswith("difference"):
            return float(rates.max() - rates.min())
        return float(rates.min() / rates.max()) if rates.max() > 0 else float("nan")
    gaps = []
    for outcome in (1, 0):  # true positive rate, false positive rate
        rows = y_true == outcome
        seen = np.bincount(group[rows], minlength=size) > 0
        if seen.any():
            rates = _rates(y_pred[rows], group[rows], size, seen)
            gaps.append(rates.max() - rates.min())
    return float(max(gaps)) if gaps else float("nan")


def _rates(y_pred: np.ndarray, group: np.ndarray, size: int, present: np.ndarray) -> np.ndarray:
    chosen = np.bincount(group, weights=y_pred, minlength=size)
    total = np.bincount(group, minlength=size)
    rates: np.ndarray = chosen[present] / total[present]
    return rates
