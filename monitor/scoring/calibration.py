"""How well a judge agrees with people: accuracy, Cohen's kappa or Spearman's rho, and
the confusion matrix, each with a 95% interval. Pure.

Judge scores and human labels are on the metric's own scale (``rubric`` binary 0/1, 1-5,
labelled classes as ``i / (k - 1)``; ``faithfulness`` a share). A discrete scale gets
accuracy (Wilson interval), Cohen's kappa (scikit-learn ``cohen_kappa_score``; for an
ordered scale of more than two values, quadratic-weighted) and the confusion matrix
(rows: people, columns: the judge). A scale of more than two values also gets Spearman's
rho (scipy ``spearmanr``); a continuous score gets only rho and the mean absolute
difference. Kappa and rho intervals are percentile bootstraps over cases, seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.scoring.intervals import bootstrap_interval, wilson


@dataclass(frozen=True, slots=True)
class Estimate:
    """A number with its 95% interval (``None`` bounds: too few cases)."""

    value: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True, slots=True)
class Calibration:
    """A judge metric against human labels over ``n`` cases."""

    metric: str
    n: int
    accuracy: Estimate | None
    kappa: Estimate | None
    kappa_weights: str | None
    spearman: Estimate | None
    mean_abs_difference: float
    labels: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    """``confusion[i][j]``: cases people scored ``labels[i]`` and the judge ``labels[j]``;
    empty for a continuous score."""
    sensitivity: Estimate | None = None
    """On a binary scale: the share of answers people passed that the judge passed
    (Wilson interval). With ``specificity`` (the share people failed that the judge
    failed), what a binary ``rubric``'s options of the same names take to correct its
    scores for the judge's errors."""
    specificity: Estimate | None = None


def calibrate(
    metric: str, judge: Sequence[float], human: Sequence[float], *, seed: int = 0
) -> Calibration:
    """Agreement of ``judge`` with ``human`` scores of the same cases (same order)."""
    from sklearn.metrics import confusion_matrix

    if len(judge) != len(human) or not judge:
        raise ValueError(f"{metric}: need the same positive number of judge and human scores")
    j = np.asarray(judge, dtype=float)
    h = np.asarray(human, dtype=float)
    n = len(j)
    values = np.union1d(j, h)
    discrete = len(values) <= 10 and bool(np.all(np.isclose(values * 4, np.round(values * 4))))
    accuracy = kappa = spearman = None
    weights = None
    labels: tuple[float, ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    if discrete:
        hits = int(np.sum(j == h))
        accuracy = Estimate(*wilson(hits, n))
        weights = "quadratic" if len(values) > 2 else None
        kappa = _estimate(lambda idx: _kappa(j[idx], h[idx], weights), n, seed)
        labels = tuple(float(v) for v in values)
        # One value only: scikit-learn warns on a 1 x 1 matrix, which is just n.
        matrix = confusion_matrix(h, j, labels=values) if len(values) > 1 else [[n]]
        confusion = tuple(tuple(int(c) for c in row) for row in matrix)
    if not discrete or len(values) > 2:
        spearman = _estimate(lambda idx: _spearman(j[idx], h[idx]), n, seed)
    sensitivity = specificity = None
    if discrete and labels == (0.0, 1.0):
        (tn, fp), (fn, tp) = confusion
        sensitivity = Estimate(*wilson(tp, tp + fn)) if tp + fn else None
        specificity = Estimate(*wilson(tn, tn + fp)) if tn + fp else None
    return Calibration(
        metric,
        n,
        accuracy,
        kappa,
        weights,
        spearman,
        float(np.mean(np.abs(j - h))),
        labels,
        confusion,
        sensitivity,
        specificity,
    )


def _estimate(statistic: Callable[[Any], float], n: int, seed: int) -> Estimate | None:
    """``statistic`` over every case, with its bootstrap interval; ``None`` when it is
    undefined on these cases."""
    value = statistic(np.arange(n))
    if not math.isfinite(value):
        return None
    lower, upper = bootstrap_interval(statistic, n, seed=seed)
    return Estimate(float(value), lower, upper)


def _kappa(judge: np.ndarray[Any, Any], human: np.ndarray[Any, Any], weights: str | None) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(np.union1d(judge, human)) < 2:
        return math.nan  # one value only: chance agreement is total, kappa undefined
    return float(cohen_kappa_score(human, judge, weights=weights))


def _spearman(judge: np.ndarray[Any, Any], human: np.ndarray[Any, Any]) -> float:
    from scipy.stats import spearmanr

    if np.all(judge == judge[0]) or np.all(human == human[0]):
        return math.nan  # a constant has no rank correlation
    return float(spearmanr(judge, human).statistic)
