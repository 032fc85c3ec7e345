"""The drift statistics themselves, as pure numpy/scipy functions.

Binned statistics take count matrices of shape ``(replicates, bins)`` so that the very same
code computes the observed statistic (one row) and its simulated null distribution
(thousands of rows) in calibrated mode: the threshold and the statistic can never disagree
on a definition. Raw-value statistics (Kolmogorov-Smirnov, Wasserstein) work on sorted
arrays with ``np.searchsorted``, so the stored sorted reference is reused as is.

scipy is imported by the functions that use it: the daemon starts (and answers
``/readyz``) without waiting for scipy.stats; the first window judged pays it once.
"""

from __future__ import annotations

import warnings

import numpy as np

# Shares of exactly zero are replaced by this before logarithms (PSI), as Evidently does for
# its usual case; symmetric zeros then contribute nothing.
PSI_EPSILON = 1e-4
# Evidently floors the reference standard deviation used to normalise Wasserstein.
MIN_NORM = 0.001
# scipy.stats.ks_2samp computes exact p-values up to this sample size, asymptotic above.
KS_EXACT_MAX_N = 10_000

FloatArray = np.ndarray


def _shares(counts: FloatArray) -> FloatArray:
    """Rows of counts -> rows of shares; an all-zero row stays zero."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=-1, keepdims=True)
    return np.asarray(np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0))


def psi(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """Population stability index, sum of (q - p) * ln(q / p) over bins."""
    p, q = _shares(ref), _shares(cur)
    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    return np.asarray(((q - p) * np.log(q / p)).sum(axis=-1))


def jensenshannon(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """Jensen-Shannon distance with natural logarithms (scipy's and Evidently's default):
    the square root of the JS divergence, in [0, sqrt(ln 2)]."""
    from scipy import special

    p, q = _shares(ref), _shares(cur)
    m = (p + q) / 2
    divergence = (special.rel_entr(p, m).sum(axis=-1) + special.rel_entr(q, m).sum(axis=-1)) / 2
    return np.asarray(np.sqrt(np.maximum(divergence, 0.0)))


def hellinger(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """Hellinger distance, sqrt(1 - sum sqrt(p q)), in [0, 1]."""
    p, q = _shares(ref), _shares(cur)
    affinity = np.clip(np.sqrt(p * q).sum(axis=-1), 0.0, 1.0)
    return np.asarray(np.sqrt(1.0 - affinity))


def linf(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """L-infinity distance: the largest absolute difference of shares in one category."""
    return np.asarray(np.abs(_shares(ref) - _shares(cur)).max(axis=-1))


def chi2(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """Pearson's chi-square statistic of homogeneity on the 2 x k table (ref row, current
    row), without Yates' correction; categories empty in both rows are left out, exactly as
    ``scipy.stats.chi2_contingency(table, correction=False)`` on the non-empty columns."""
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cur, dtype=np.float64)
    n_r = r.sum(axis=-1, keepdims=True)
    n_c = c.sum(axis=-1, keepdims=True)
    a = n_r / (n_r + n_c)
    t = r + c
    d = r - t * a
    denom = t * a * (1 - a)
    terms = np.divide(d * d, denom, out=np.zeros_like(t), where=denom > 0)
    return np.asarray(terms.sum(axis=-1))


def chi2_pvalue(ref: FloatArray, cur: FloatArray, statistic: float) -> float:
    """p-value of ``chi2`` for one table: dof = non-empty categories - 1."""
    from scipy import stats

    dof = int(np.count_nonzero(np.asarray(ref) + np.asarray(cur))) - 1
    if dof < 1:
        return 1.0
    return float(stats.chi2.sf(statistic, dof))


BINNED = {
    "psi": psi,
    "jensenshannon": jensenshannon,
    "hellinger": hellinger,
    "linf": linf,
    "chi2": chi2,
}


def ks_wasserstein(ref_sorted: FloatArray, cur_sorted: FloatArray) -> tuple[float, float]:
    """The two-sample Kolmogorov-Smirnov D and the (unnormalised) first Wasserstein distance,
    in one pass over the merged sorted values; same definitions as ``scipy.stats.ks_2samp``
    and ``scipy.stats.wasserstein_distance`` (right-continuous empirical CDFs).

    A stable argsort of the two concatenated sorted runs is a linear merge (timsort); the
    running count of window values along the merge gives both CDFs without any search."""
    n, m = ref_sorted.size, cur_sorted.size
    merged = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    # Buffers are reused once free (merged for the steps, order for the gaps): fewer fresh
    # big arrays, fewer page faults, which cost as much as the arithmetic at 100k rows.
    step = np.subtract(values[1:], values[:-1], out=merged[:-1])
    ties = step.size - np.count_nonzero(step)
    # n * m * |F_ref - F_cur| after k merged values = |k * m - seen_cur * (n + m)|: exact
    # integers (an integer cumsum is ten times faster than a float one), in place.
    gap = np.cumsum(order >= n, out=order)
    gap *= -(n + m)
    gap += np.arange(m, (n + m + 1) * m, m, dtype=np.int64)
    np.abs(gap, out=gap)
    # multiply-and-sum, not np.dot: BLAS threads stall on a busy machine (20 ms for 200k)
    step *= gap[:-1]
    w = float(step.sum()) / (n * m)
    # Inside a run of equal values the CDFs are only complete at the run's last position.
    if ties == 0:
        d = float(gap.max()) / (n * m)
    else:
        d = float(gap[np.append(values[1:] != values[:-1], True)].max()) / (n * m)
    return d, w


def ks_pvalue(
    d: float, ref_sorted: FloatArray, cur_sorted: FloatArray, exact_max_en: float = 10_000
) -> float:
    """Two-sided p-value of D.

    While the effective size en = n m / (n + m) is at most ``exact_max_en`` this is exactly
    ``ks_2samp(method="auto")``: the exact distribution when both samples have at most
    10,000 values, else ``kstwo.sf(D, round(en))``. Above, scipy's finite-n formula costs
    about 6 microseconds per unit of en (3 s for a million rows against a million), so the
    Kolmogorov limit distribution with Stephens' finite-n correction is used instead:
    relative difference from scipy under 0.2% for p >= 0.01 and under 2% for p >= 1e-8."""
    from scipy import stats

    n, m = ref_sorted.size, cur_sorted.size
    en = n * m / (n + m)
    if en > exact_max_en:
        root = np.sqrt(en)
        return float(np.clip(stats.kstwobign.sf(d * (root + 0.12 + 0.11 / root)), 0.0, 1.0))
    if max(n, m) <= KS_EXACT_MAX_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(ref_sorted, cur_sorted).pvalue)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def ks_critical(n: int, m: int, false_alarm_rate: float) -> float:
    """The D above which a two-sample KS test on continuous data rejects at level
    ``false_alarm_rate``: D is distribution-free under the null, so this IS its calibrated
    upper quantile (conservative when values tie)."""
    from scipy import stats

    en = n * m / (n + m)
    return float(stats.kstwo.isf(false_alarm_rate, max(1.0, np.round(en))))


def normalised_wasserstein(w: float, ref_std: float) -> float:
    """Wasserstein distance over the reference standard deviation (population, ddof=0),
    floored at 0.001: Evidently's ``wasserstein`` method."""
    return w / max(ref_std, MIN_NORM)
