"""Judge a window's realized performance against the reference performance.

A window and its reference are different records, so the verdicts' paired tests (each
case its own control) do not apply: this is a two-sample comparison of per-record
scores, one-sided ("is the window worse?"), because a drop is what pages someone.

- accuracy (0/1 per record): Fisher's exact test on the 2x2 table of correct and wrong
  records in the window and in the reference; exact at any size, no normal approximation
  for the small windows a late-labelled stream often has;
- MAE, RMSE, MAPE (means of per-record errors: absolute, squared, relative): Welch's
  t-test on the per-record errors, which tests exactly the difference of the means these
  metrics are (RMSE through its square, the mean squared error) without assuming equal
  variances;
- against a configured ``target`` (no labelled reference): the one-sample versions, a
  binomial test of accuracy against the target share and a one-sample t-test of the mean
  error against the target (squared for RMSE);
- metrics computed over all records at once (precision, recall, F1, ROC AUC, log loss,
  R2) have no per-record score to test: their difference is reported with both
  intervals, and against a target they are called worse only when the whole interval is
  on the wrong side of it.

The p-values of the tested metrics are Holm-adjusted together (the drift engine's
``adjust``), so a window of an unchanged model is called worse in at most ``alpha`` of
windows whatever the number of metrics. Pure: numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from monitor.drift.corrections import adjust
from monitor.performance.realized import MetricResult, Performance

__all__ = ["MetricJudgement", "judge", "judge_target"]

_MEAN_TESTED = ("mae", "rmse", "mape")


@dataclass(frozen=True, slots=True)
class MetricJudgement:
    """One metric of a window against the reference (or target): the difference, the
    test, its one-sided p-value for "the window is worse" (Holm-adjusted), and ``worse``."""

    metric: str
    reference: float
    current: float
    delta: float
    test: str | None
    p_value: float | None
    worse: bool


def judge(
    window: Performance, reference: Performance, *, alpha: float
) -> tuple[MetricJudgement, ...]:
    """Each metric both sides have, judged by a two-sample test where one applies."""
    rows: list[tuple[MetricResult, float, str | None, float | None]] = []
    for current in window.metrics:
        base = reference.metric(current.metric)
        if base is None:
            continue
        test, p = _two_sample(current.metric, window.per_record, reference.per_record)
        rows.append((current, base.value, test, p))
    return _decide(rows, alpha)


def judge_target(
    window: Performance, target: Mapping[str, float], *, alpha: float
) -> tuple[MetricJudgement, ...]:
    """Each metric with a target, judged by a one-sample test (or by its interval)."""
    rows: list[tuple[MetricResult, float, str | None, float | None]] = []
    for current in window.metrics:
        if current.metric not in target:
            continue
        goal = float(target[current.metric])
        test, p = _one_sample(current, goal, window.per_record.get(current.metric))
        rows.append((current, goal, test, p))
    return _decide(rows, alpha)


def _two_sample(
    name: str, window: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
) -> tuple[str | None, float | None]:
    from scipy import stats

    cur, base = window.get(name), reference.get(name)
    if cur is None or base is None or len(cur) < 2 or len(base) < 2:
        return None, None
    if name == "accuracy":
        table = [[int(cur.sum()), int(len(cur) - cur.sum())]]
        table.append([int(base.sum()), int(len(base) - base.sum())])
        return "fisher-exact", float(stats.fisher_exact(table, alternative="less").pvalue)
    if name in _MEAN_TESTED:
        result = stats.ttest_ind(cur, base, equal_var=False, alternative="greater")
        return "welch-t", _finite(result.pvalue)
    return None, None


def _one_sample(
    current: MetricResult, goal: float, values: np.ndarray | None
) -> tuple[str | None, float | None]:
    from scipy import stats

    if values is not None and len(values) >= 2 and current.metric == "accuracy":
        result = stats.binomtest(int(values.sum()), len(values), goal, alternative="less")
        return "binomial", float(result.pvalue)
    if values is not None and len(values) >= 2 and current.metric in _MEAN_TESTED:
        mean = goal**2 if current.metric == "rmse" else goal
        result = stats.ttest_1samp(values, mean, alternative="greater")
        return "t", _finite(result.pvalue)
    return "interval", None


def _decide(
    rows: list[tuple[MetricResult, float, str | None, float | None]], alpha: float
) -> tuple[MetricJudgement, ...]:
    tested = [i for i, (_, _, _, p) in enumerate(rows) if p is not None]
    p_values = [rows[i][3] or 0.0 for i in tested]
    adjusted = dict(zip(tested, adjust(p_values, "holm"), strict=True))
    out = []
    for i, (current, base, test, _) in enumerate(rows):
        p = adjusted.get(i)
        if p is not None:
            worse = p < alpha
        elif test == "interval":
            worse = _interval_worse(current, base)
        else:
            worse = False
        delta = current.value - base
        out.append(MetricJudgement(current.metric, base, current.value, delta, test, p, worse))
    return tuple(out)


def _interval_worse(current: MetricResult, goal: float) -> bool:
    if current.higher_is_better:
        return current.upper is not None and current.upper < goal
    return current.lower is not None and current.lower > goal


def _finite(p: float) -> float:
    # Two samples with no spread at all (every error 0) give NaN: nothing to call worse.
    value = float(p)
    return value if math.isfinite(value) else 1.0
