"""Confidence intervals for the mean of per-case scores."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats


def mean_interval(
    scores: Sequence[float], *, binary: bool, confidence: float = 0.95
) -> tuple[float, float | None, float | None]:
    """The mean of ``scores`` with a two-sided interval.

    Binary (0/1) scores get the Wilson score interval, which stays inside [0, 1] and behaves
    at 0% and 100%; other scores get Student's t interval. With fewer than two cases there is
    no interval for continuous scores.
    """
    n = len(scores)
    if n == 0:
        raise ValueError("cannot average zero scores")
    mean = math.fsum(scores) / n
    if binary:
        successes = round(math.fsum(scores))
        ci = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
        return mean, float(ci.low), float(ci.high)
    if n < 2:
        return mean, None, None
    sem = stats.sem(scores)
    if sem == 0 or math.isnan(sem):
        return mean, mean, mean
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)
