"""Realized performance: a stream window's metrics on the records whose labels arrived.

The metrics are the suites' own (``monitor.scoring``): the same classes, options and
intervals score a window's predictions against its labels as score a run's answers
against a dataset, so "accuracy" means the same number in both places. A window's
performance covers its labelled records only; ``labelled_share`` says how many those
are. With fewer than ``min_labels`` labelled records no metric is computed (the number
would be noise), and the status says so.

Intervals are the scoring code's: Wilson for accuracy, a seeded bootstrap for the
metrics computed over all cases at once. A bootstrap over a million records costs a
thousand recomputations of the metric over a million records, so above
``interval_rows`` labelled records the bootstrap runs on a seeded subsample of that many
and its width is scaled by ``sqrt(subsample / n)`` around the value computed on every
record (the width of these metrics' sampling distributions shrinks as ``1/sqrt(n)``).
The value itself is always computed on every labelled record.

Pure: numpy and the scoring package; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from monitor.scoring import Metric, PerCaseMetric, build_metric
from monitor.scoring.intervals import RESAMPLES, bootstrap_interval

Task = Literal["classification", "regression"]
Status = Literal["ok", "insufficient_labels"]

__all__ = [
    "MetricResult",
    "Performance",
    "measure",
    "subsampled_interval",
]


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric over the labelled records, with its 95% interval."""

    metric: str
    value: float
    lower: float | None
    upper: float | None
    higher_is_better: bool


@dataclass(frozen=True, slots=True)
class Performance:
    """A set of records' realized performance. ``per_record`` holds, for the metrics that
    decompose over records (accuracy's 0/1, MAE's absolute error, RMSE's squared error,
    MAPE's relative error), every labelled record's score: what a two-sample test
    compares. It is kept in memory, not stored."""

    task: Task
    n_rows: int
    n_labelled: int
    status: Status
    metrics: tuple[MetricResult, ...] = ()
    per_record: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @property
    def labelled_share(self) -> float:
        return self.n_labelled / self.n_rows if self.n_rows else 0.0

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.metric == name), None)


def measure(
    task: Task,
    predictions: Sequence[Any],
    labels: Sequence[Any],
    scores: Sequence[float | None] | None = None,
    *,
    metrics: Sequence[str | dict[str, Any]],
    min_labels: int = 30,
    interval_rows: int = 20_000,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Performance:
    """The performance of ``predictions`` against ``labels`` (``None``: not labelled yet).

    Records without a label, or without a prediction, are left out; ``n_labelled`` counts
    those that remain. ``scores`` (the positive class's probability) feed ROC AUC and log
    loss; a record without a score is left out of those two only. ``resamples`` is the
    bootstrap's (the values do not depend on it).
    """
    n_rows = len(predictions)
    keep = [
        i
        for i, (p, y) in enumerate(zip(predictions, labels, strict=True))
        if y is not None and p is not None
    ]
    if len(keep) < min_labels:
        return Performance(task, n_rows, len(keep), "insufficient_labels")
    preds = [predictions[i] for i in keep]
    truths = [labels[i] for i in keep]
    kept_scores = None if scores is None else [scores[i] for i in keep]
    results, per_record = [], {}
    for spec in metrics:
        metric = build_metric(spec)
        result, values = _score(
            metric, preds, truths, kept_scores, seed=seed, rows=interval_rows, resamples=resamples
        )
        if result is not None:
            results.append(result)
        if values is not None:
            per_record[metric.label] = values
    return Performance(task, n_rows, len(keep), "ok", tuple(results), per_record)


def _score(
    metric: Metric,
    preds: list[Any],
    truths: list[Any],
    scores: list[float | None] | None,
    *,
    seed: int,
    rows: int,
    resamples: int,
) -> tuple[MetricResult | None, np.ndarray | None]:
    if metric.needs_scores:
        if scores is None:
            return None, None
        scored = [i for i, s in enumerate(scores) if s is not None]
        if len(scored) < 2:
            return None, None
        preds = [preds[i] for i in scored]
        truths = [truths[i] for i in scored]
        scores = [scores[i] for i in scored]
    if isinstance(metric, PerCaseMetric):
        score = metric.compute(preds, truths, scores, seed=seed)
        values = np.asarray(score.per_case, dtype=float)
        return _result(metric, score.value, score.lower, score.upper), values
    statistic = metric.statistic(preds, truths, scores)
    n = len(preds)
    try:
        value = statistic(np.arange(n))
    except ValueError:  # one class only for ROC AUC: the metric is undefined here
        return None, None
    lower, upper = _interval(statistic, n, value, seed=seed, rows=rows, resamples=resamples)
    return _result(metric, value, lower, upper), _per_record(metric.name, preds, truths)


def _interval(
    statistic: Any, n: int, value: float, *, seed: int, rows: int, resamples: int
) -> tuple[float | None, float | None]:
    """The bootstrap interval of ``statistic`` over ``n`` records; above ``rows`` records,
    from a seeded subsample of ``rows``, scaled to ``n`` (see the module docstring)."""

    def build(sample: np.ndarray | None) -> Any:
        return statistic if sample is None else (lambda idx: statistic(sample[idx]))

    return subsampled_interval(build, n, value, seed=seed, rows=rows, resamples=resamples)


def subsampled_interval(
    build: Callable[[np.ndarray | None], Callable[[np.ndarray], float]],
    n: int,
    value: float,
    *,
    seed: int,
    rows: int,
    resamples: int = RESAMPLES,
) -> tuple[float | None, float | None]:
    """The bootstrap interval of a statistic over ``n`` records, with ``value`` its value
    on all of them. ``build(None)`` gives the statistic over the ``n`` records (a function
    of an index array); above ``rows`` records, ``build(sample)`` gives it over the records
    of a seeded, sorted subsample of ``rows`` indices (so a caller prepares only those),
    and the interval is scaled by ``sqrt(rows / n)`` around ``value``."""
    if n <= rows:
        return bootstrap_interval(build(None), n, seed=seed, resamples=resamples)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=rows, replace=False))
    statistic = build(sample)
    lower, upper = bootstrap_interval(statistic, rows, seed=seed, resamples=resamples)
    if lower is None or upper is None:
        return None, None
    centre = statistic(np.arange(rows))
    shrink = math.sqrt(rows / n)
    return value + (lower - centre) * shrink, value + (upper - centre) * shrink


def _per_record(name: str, preds: list[Any], truths: list[Any]) -> np.ndarray | None:
    """Each record's share of a mean-type regression metric: what MAE, RMSE (through
    the mean squared error) and MAPE average (scikit-learn's definitions)."""
    if name not in ("mae", "rmse", "mape"):
        return None
    y: np.ndarray = np.asarray(truths, dtype=float)
    error: np.ndarray = np.abs(y - np.asarray(preds, dtype=float))
    if name == "mae":
        return error
    if name == "rmse":
        squared: np.ndarray = error**2
        return squared
    relative: np.ndarray = error / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    return relative


def _result(metric: Metric, value: float, lower: float | None, upper: float | None) -> MetricResult:
    return MetricResult(metric.label, float(value), lower, upper, metric.higher_is_better)
