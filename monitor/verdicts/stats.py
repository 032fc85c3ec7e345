"""Paired tests of a new run against its baseline, case by case. Pure: numpy and scipy.

Cases are paired by id, so each case is its own control: the case-to-case spread of
difficulty cancels out, and a real change shows up with far fewer cases than an unpaired
comparison (or a raw ``new >= baseline`` rule, which flags half the runs of an unchanged
noisy model) would need.

- pass/fail scores: exact McNemar test (a binomial test on the discordant pairs) with the
  Agresti-Min interval for the paired difference of proportions;
- continuous scores: seeded paired bootstrap of the mean difference (or Wilcoxon
  signed-rank for the p-value);
- aggregate-only metrics (ROC AUC, BLEU): seeded paired bootstrap over cases, recomputing
  the metric on each resample.

scipy is imported by the tests that use it, not with this module: the daemon and the gate
start without paying scipy.stats' half second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
"""``scipy.stats.norm.ppf(0.975)``, the two-sided 95% normal quantile (a test checks it)."""
Scores = Sequence[float] | np.ndarray


@dataclass(frozen=True, slots=True)
class PairedTest:
    """The difference new - baseline over ``n`` paired cases, with a 95% interval, a
    two-sided p-value for "no difference", and the one-sided p-values a gate decides on:
    ``p_less`` for "new is lower", ``p_greater`` for "new is higher". Each direction has
    its own alpha, so an unchanged model is called worse in at most alpha of runs.

    The one-sided bounds go with those one-sided tests, at level ``1 - alpha``, from the
    same interval method: with that confidence the difference is at most ``upper_bound``
    (the bound of "new is lower") and, on its own, at least ``lower_bound`` (of "new is
    higher"). For McNemar and the bootstrap, a one-sided p-value under ``alpha`` comes
    with its bound beyond zero (``wilcoxon``'s rank p-value sits beside bootstrap bounds)."""

    method: str
    n: int
    baseline: float
    new: float
    delta: float
    lower: float
    upper: float
    p_value: float
    p_less: float
    p_greater: float
    alpha: float
    lower_bound: float
    upper_bound: float
    # For binary scores: baseline pass -> new fail (degraded) and the reverse (improved).
    degraded: int | None = None
    improved: int | None = None


def mcnemar_exact(baseline: Scores, new: Scores, *, alpha: float = 0.05) -> PairedTest:
    """Exact McNemar test on paired 0/1 scores; Agresti-Min interval and bounds."""
    from scipy import stats

    base, cur = _pair(baseline, new)
    if not (np.isin(base, (0.0, 1.0)).all() and np.isin(cur, (0.0, 1.0)).all()):
        raise ValueError("mcnemar_exact needs 0/1 scores")
    n = len(base)
    degraded = int(np.sum((base == 1) & (cur == 0)))
    improved = int(np.sum((base == 0) & (cur == 1)))
    discordant = degraded + improved
    p = stats.binomtest(improved, discordant, 0.5).pvalue if discordant else 1.0
    # One-sided: few improvements among the discordant pairs means the new run is worse.
    p_less = stats.binom.cdf(improved, discordant, 0.5) if discordant else 1.0
    p_greater = stats.binom.cdf(degraded, discordant, 0.5) if discordant else 1.0
    lower, upper = agresti_min_interval(degraded, improved, n)
    # A one-sided bound at 1 - alpha is the end of the two-sided 1 - 2 alpha interval.
    at_least, at_most = agresti_min_interval(
        degraded, improved, n, z=float(stats.norm.ppf(1 - alpha))
    )
    return PairedTest(
        "mcnemar-exact",
        n,
        float(base.mean()),
        float(cur.mean()),
        (improved - degraded) / n,
        lower,
        upper,
        float(p),
        float(p_less),
        float(p_greater),
        alpha,
        at_least,
        at_most,
        degraded,
        improved,
    )


def agresti_min_interval(
    degraded: int, improved: int, n: int, *, z: float = Z95
) -> tuple[float, float]:
    """95% interval for the paired difference of proportions, adding 1/2 to every cell of
    the 2x2 table (Agresti and Min, 2005): good coverage even with few discordant pairs.
    ``z`` is the normal quantile (``norm.ppf(1 - alpha)`` gives one-sided bounds)."""
    b, c, m = degraded + 0.5, improved + 0.5, n + 2.0
    delta = (c - b) / m
    se = math.sqrt(max((b + c) - (c - b) ** 2 / m, 0.0)) / m
    return max(-1.0, delta - z * se), min(1.0, delta + z * se)


def paired_bootstrap(
    baseline: Scores,
    new: Scores,
    *,
    statistic: Callable[[np.ndarray], float] | None = None,
    resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedTest:
    """Bootstrap the mean difference (or ``statistic(scores)`` computed on both sides of
    each resample) by resampling cases with replacement; percentile interval and one-sided
    bounds (the ``alpha`` and ``1 - alpha`` percentiles); the one-sided p-values are the
    shares of resampled differences on the far side of zero, the two-sided one twice the
    smaller."""
    base, cur = _pair(baseline, new)
    n = len(base)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    if statistic is None:
        diffs = (cur - base)[index].mean(axis=1)
        point_base, point_new = float(base.mean()), float(cur.mean())
    else:
        diffs = np.array([statistic(cur[i]) - statistic(base[i]) for i in index])
        point_base, point_new = statistic(base), statistic(cur)
    lower, upper = np.percentile(diffs, [2.5, 97.5])
    at_least, at_most = _bootstrap_bounds(diffs, alpha)
    if np.any(diffs != 0):
        floor = 1.0 / resamples
        p_less = max(float(np.mean(diffs >= 0)), floor)
        p_greater = max(float(np.mean(diffs <= 0)), floor)
    else:
        p_less = p_greater = 1.0
    p = min(1.0, 2 * min(p_less, p_greater))
    return PairedTest(
        "paired-bootstrap",
        n,
        point_base,
        point_new,
        point_new - point_base,
        float(lower),
        float(upper),
        p,
        p_less,
        p_greater,
        alpha,
        float(at_least),
        float(at_most),
    )


def _bootstrap_bounds(diffs: np.ndarray, alpha: float) -> tuple[float, float]:
    """The one-sided percentile bounds of resampled differences: the ``k``-th smallest and
    the ``k``-th largest, ``k`` the fewest resamples that make a share of at least
    ``alpha``. So the upper bound is below zero exactly when fewer than that share are at
    or above zero, which is when ``p_less < alpha`` (and the same for the lower bound)."""
    resamples = len(diffs)
    k = max(1, math.ceil(alpha * resamples))
    while k > 1 and (k - 1) / resamples >= alpha:  # ceil's float rounding, either way
        k -= 1
    while k < resamples and k / resamples < alpha:
        k += 1
    ordered = np.sort(diffs)
    at_least, at_most = float(ordered[k - 1]), float(ordered[resamples - k])
    if k == 1:
        # One resample already makes alpha: the p-values' floor of 1 / resamples can never
        # be under alpha, so neither bound may exclude zero.
        at_least, at_most = min(at_least, 0.0), max(at_most, 0.0)
    return at_least, at_most


def wilcoxon(baseline: Scores, new: Scores, *, seed: int = 0, alpha: float = 0.05) -> PairedTest:
    """Wilcoxon signed-rank p-value, with the paired-bootstrap interval and bounds of the
    mean."""
    from scipy import stats

    base, cur = _pair(baseline, new)
    interval = paired_bootstrap(base, cur, seed=seed, alpha=alpha)
    if np.all(cur == base):
        p = p_less = p_greater = 1.0
    else:
        p = float(stats.wilcoxon(cur, base, zero_method="wilcox").pvalue)
        p_less = float(stats.wilcoxon(cur, base, zero_method="wilcox", alternative="less").pvalue)
        p_greater = float(
            stats.wilcoxon(cur, base, zero_method="wilcox", alternative="greater").pvalue
        )
    return PairedTest(
        "wilcoxon",
        interval.n,
        interval.baseline,
        interval.new,
        interval.delta,
        interval.lower,
        interval.upper,
        p,
        p_less,
        p_greater,
        alpha,
        interval.lower_bound,
        interval.upper_bound,
    )


def holm(p_values: Scores) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: controls the family-wise
    error over every metric and slice of a verdict."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def cases_needed_binary(
    discordance: float, effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Paired cases McNemar needs to detect a change of ``effect`` in the pass rate with
    ``power``, given the share of discordant pairs (Connor, 1987)."""
    from scipy import stats

    effect = abs(effect)
    discordance = max(discordance, effect, 1e-9)
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    root = za * math.sqrt(discordance) + zb * math.sqrt(max(discordance - effect**2, 0.0))
    needed: int = math.ceil(float(root**2 / effect**2))
    return needed


def cases_needed_continuous(
    sd_difference: float, effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Paired cases needed to detect a mean change of ``effect`` given the standard
    deviation of per-case differences (normal approximation)."""
    from scipy import stats

    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    needed: int = math.ceil(float(((za + zb) * sd_difference / abs(effect)) ** 2))
    return needed


def _pair(baseline: Scores, new: Scores) -> tuple[np.ndarray, np.ndarray]:
    base = np.asarray(baseline, dtype=float)
    cur = np.asarray(new, dtype=float)
    if base.shape != cur.shape or base.ndim != 1:
        raise ValueError(
            f"paired scores must have the same length, got {base.shape} and {cur.shape}"
        )
    if len(base) == 0:
        raise ValueError("no paired cases")
    return base, cur
