"""Group fairness over labelled predictions: fairlearn's demographic parity difference
and ratio and equalized odds difference, with seeded bootstrap intervals.

For a sensitive attribute (``gender``) and a binary task (``positive`` is the favourable
outcome): demographic parity compares selection rates across groups, equalized odds
takes the larger of the true- and false-positive rate gaps across groups. The values are
fairlearn's own functions; their 95% intervals are a seeded bootstrap over records that
recomputes the same quantities from per-group counts (fairlearn through pandas costs
milliseconds a call, a thousand resamples seconds; a test holds the count version equal
to fairlearn on resampled data). Both suites (a run's cases, ``monitor.scoring.evaluation``)
and streams (a window's records, ``monitor.performance.groups``) use this one module.

Pure: numpy and fairlearn (imported when a measure is computed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.scoring.classification import normalise_label
from monitor.scoring.intervals import RESAMPLES, bootstrap_interval

FAIRNESS_MEASURES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)

__all__ = ["FAIRNESS_MEASURES", "FairnessMeasure", "fairness", "from_counts"]


@dataclass(frozen=True, slots=True)
class FairnessMeasure:
    """One group fairness measure with its 95% interval."""

    measure: str
    value: float
    lower: float | None
    upper: float | None


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
