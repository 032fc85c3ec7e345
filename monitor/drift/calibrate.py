"""Calibrated thresholds: each statistic's null distribution at the current window size.

Under "no drift" both the reference (n values) and the window (m values) are samples of the
same distribution, estimated by the reference itself. For binned statistics this null is a
pair of multinomials over the reference bin shares, so it is simulated exactly and cheaply in
count space: ``replicates`` draws of (reference counts, window counts), the statistic on each,
the threshold at its upper ``1 - false_alarm_rate`` quantile. The normalised Wasserstein
distance is simulated the same way on the fine quantile grid (each fine bin at its mean
value). KS needs no simulation: its null is distribution-free, so the threshold is the exact
critical value of D. Thresholds are cached per (column, method, window size) in the profile.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from monitor.drift import stats
from monitor.drift.profile import CategoricalProfile, NumericalProfile, ReferenceProfile
from monitor.drift.types import Method

# Expected count per bin above which multinomial draws are replaced by normal ones.
GAUSSIAN_MIN_EXPECTED = 25.0
# Null replicates simulated at a time.
BLOCK = 250


def _rng(profile: ReferenceProfile, column: str, size: int) -> np.random.Generator:
    """A generator seeded by (seed, column, size): thresholds are reproducible and do not
    depend on the order in which windows arrive."""
    return np.random.default_rng([profile.settings.seed, zlib.crc32(column.encode()), size])


def thresholds(
    profile: ReferenceProfile, column: str, methods: Sequence[Method], size: int
) -> dict[Method, float]:
    """Calibrated thresholds of ``methods`` on ``column`` for a window of ``size`` present
    values, from the cache when possible."""
    if "ks" in methods:
        exact = stats.ks_critical(
            _reference_size(profile, column), size, profile.settings.false_alarm_rate
        )
        rest = [m for m in methods if m != "ks"]
        return {"ks": exact, **thresholds(profile, column, rest, size)} if rest else {"ks": exact}
    size = calibration_size(size)
    found: dict[Method, float] = {}
    missing: list[Method] = []
    for method in methods:
        cached = profile.cached_threshold((column, method, size))
        if cached is None:
            missing.append(method)
        else:
            found[method] = cached
    if missing:
        computed = _simulate(profile, column, missing, size)
        for method, value in computed.items():
            profile.store_threshold((column, method, size), value)
        found.update(computed)
    return found


def _simulate(
    profile: ReferenceProfile, column: str, methods: Sequence[Method], size: int
) -> dict[Method, float]:
    quantile = 1.0 - profile.settings.false_alarm_rate
    if column in profile.categorical:
        null = _categorical_null(profile.categorical[column], methods, size, profile, column)
    else:
        null = _numerical_null(profile.numerical[column], methods, size, profile, column)
    return {method: float(np.quantile(values, quantile)) for method, values in null.items()}


def calibration_size(size: int) -> int:
    """The window size thresholds are simulated for: ``size`` rounded DOWN to two
    significant digits (9,893 -> 9,800). Missing values make the present count vary a little
    from window to window; without rounding every window would recalibrate. Rounding down
    errs on the safe side: a smaller window has a slightly higher threshold."""
    if size < 100:
        return size
    scale = int(10 ** (len(str(size)) - 2))
    return (size // scale) * scale


def _reference_size(profile: ReferenceProfile, column: str) -> int:
    return profile.numerical[column].n


def _draw(
    shares: np.ndarray, n: int, m: int, replicates: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Null pairs of (reference counts, window counts) over bins with ``shares``."""
    return _counts(shares, n, replicates, rng), _counts(shares, m, replicates, rng)


def _counts(shares: np.ndarray, size: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """``replicates`` multinomial count vectors of ``size`` draws over bins with ``shares``.

    Drawing exact multinomials costs one binomial per bin and replicate; when most of the
    mass sits in bins expecting at least ``GAUSSIAN_MIN_EXPECTED`` values, those bins are
    drawn from the normal distribution with the multinomial's mean and covariance
    (size * (diag(p) - p p^T)) and the few sparse (tail) bins from independent Poissons:
    an order of magnitude cheaper and indistinguishable at such counts."""
    expected = size * shares
    dense = expected >= GAUSSIAN_MIN_EXPECTED
    if shares[~dense].sum() > 0.05:
        return rng.multinomial(size, shares, size=replicates).astype(np.float64)
    out = np.empty((replicates, shares.size))
    body = shares[dense].astype(np.float32)
    # single precision: the noise needs a few digits only and draws twice as fast
    x = rng.standard_normal((replicates, body.size), dtype=np.float32)
    x *= np.sqrt(body)
    x -= body * x.sum(axis=1, keepdims=True)
    x *= np.float32(np.sqrt(size))
    x += np.float32(size) * body
    out[:, dense] = np.maximum(x, 0.0)
    sparse = expected[~dense]
    out[:, ~dense] = rng.poisson(sparse, size=(replicates, sparse.size))
    return out


def _blocks(replicates: int) -> list[int]:
    """Replicates are simulated in blocks of ``BLOCK`` so that the simulation's memory stays
    small and fixed whatever ``calibration_replicates`` is."""
    return [min(BLOCK, replicates - start) for start in range(0, replicates, BLOCK)]


def _numerical_null(
    num: NumericalProfile,
    methods: Sequence[Method],
    size: int,
    profile: ReferenceProfile,
    column: str,
) -> dict[Method, np.ndarray]:
    wanted = [m for m in methods if m != "ks"]
    if not wanted:
        return {}
    fine = num.fine_bins()
    shares = fine / fine.sum()
    starts = num.coarse_starts()
    steps = np.diff(num.fine_points())
    norm = max(num.std, stats.MIN_NORM)
    rng = _rng(profile, column, size)
    parts: dict[Method, list[np.ndarray]] = {m: [] for m in wanted}
    for block in _blocks(profile.settings.calibration_replicates):
        ref, cur = _draw(shares, num.n, size, block, rng)
        coarse_ref = np.add.reduceat(ref, starts, axis=1)
        coarse_cur = np.add.reduceat(cur, starts, axis=1)
        for method in wanted:
            if method == "wasserstein":
                parts[method].append(_grid_wasserstein(ref, cur, steps) / norm)
            else:
                parts[method].append(stats.BINNED[method](coarse_ref, coarse_cur))
    return {method: np.concatenate(values) for method, values in parts.items()}


def _grid_wasserstein(ref: np.ndarray, cur: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """W1 between histograms whose bins sit ``steps`` apart: the integral of |F_ref - F_cur|."""
    f_ref = np.cumsum(ref, axis=1)
    f_ref /= ref.sum(axis=1, keepdims=True)
    f_cur = np.cumsum(cur, axis=1)
    f_cur /= cur.sum(axis=1, keepdims=True)
    f_ref -= f_cur
    np.abs(f_ref, out=f_ref)
    # multiply-and-sum rather than a BLAS product, whose threads stall on a busy machine
    return np.asarray((f_ref[:, :-1] * steps).sum(axis=1))


def _categorical_null(
    cat: CategoricalProfile,
    methods: Sequence[Method],
    size: int,
    profile: ReferenceProfile,
    column: str,
) -> dict[Method, np.ndarray]:
    # Half a count added to every category and to one unseen category: with a small
    # reference, rare categories are under- or unrepresented, and a null drawn from the raw
    # shares would never produce the window's share of them.
    smoothed = np.append(cat.counts, 0) + 0.5
    shares = smoothed / smoothed.sum()
    rng = _rng(profile, column, size)
    wanted = [m for m in methods if m != "ks"]
    parts: dict[Method, list[np.ndarray]] = {m: [] for m in wanted}
    for block in _blocks(profile.settings.calibration_replicates):
        ref, cur = _draw(shares, cat.n, size, block, rng)
        for method in wanted:
            parts[method].append(stats.BINNED[method](ref, cur))
    return {method: np.concatenate(values) for method, values in parts.items()}
