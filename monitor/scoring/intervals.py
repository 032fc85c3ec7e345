"""Confidence intervals: Wilson for proportions, seeded percentile bootstrap otherwise.

scipy is imported by the functions that use it: importing the scoring package (as the
configuration does, to validate metric names) must not cost scipy's second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


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
        _, low, high = wilson(round(math.fsum(scores)), n, confidence=confidence)
        return mean, low, high
    if n < 2:
        return mean, None, None
    from scipy import stats

    sem = stats.sem(scores)
    if sem == 0 or math.isnan(sem):
        return mean, mean, mean
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """The share ``successes / n`` with its Wilson score interval (scipy's)."""
    from scipy import stats

    ci = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return successes / n, float(ci.low), float(ci.high)


RESAMPLES = 1000
"""Bootstrap resamples per interval: enough for stable 2.5/97.5 percentiles."""

_CHUNK_INDICES = 1_000_000
"""At most this many resampled indices are held at once (8 MB), whatever the run size."""


def bootstrap_interval(
    statistic: Callable[[npt.NDArray[np.intp]], float],
    n: int,
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    confidence: float = 0.95,
) -> tuple[float | None, float | None]:
    """A percentile bootstrap interval of ``statistic`` over ``n`` cases.

    Each resample draws ``n`` case indices with replacement from a generator seeded with
    ``seed``, so the same cases give the same interval on every run. Resamples where the
    statistic is undefined (NaN, or a ``ValueError`` such as one class only for ROC AUC)
    are dropped; with fewer than half of them left there is no interval.
    """
    import numpy as np

    if n < 2:
        return None, None
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(resamples):
        try:
            value = statistic(rng.integers(0, n, size=n))
        except ValueError:
            continue
        if math.isfinite(value):
            values.append(value)
    if len(values) < resamples / 2:
        return None, None
    return _percentiles(np.asarray(values), confidence)


def bootstrap_mean(
    scores: npt.NDArray[np.float64],
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    confidence: float = 0.95,
) -> tuple[float, float | None, float | None]:
    """The mean of ``scores`` with a percentile bootstrap interval, resampled in chunks so
    memory stays bounded however many cases there are."""
    import numpy as np

    n = len(scores)
    if n == 0:
        raise ValueError("cannot average zero scores")
    mean = math.fsum(scores.tolist()) / n
    if n < 2:
        return mean, None, None
    rng = np.random.default_rng(seed)
    means: list[npt.NDArray[np.float64]] = []
    chunk = max(1, _CHUNK_INDICES // n)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means.append(scores[rng.integers(0, n, size=(size, n))].mean(axis=1))
    lower, upper = _percentiles(np.concatenate(means), confidence)
    return mean, lower, upper


def _percentiles(values: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    import numpy as np

    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
