"""Calibrated thresholds: each statistic's null distribution at the current window size.

Under "no drift" both the reference (n values) and the window (m values) are samples of the
same distribution, estimated by the reference itself; a threshold is the upper
``1 - false_alarm_rate`` quantile of the statistic over ``calibration_replicates`` simulated
(reference, window) pairs. Everything is simulated in count space, never by resampling data:

- binned statistics (PSI, Jensen-Shannon, Hellinger; chi-square and L-infinity on categories)
  from pairs of multinomial counts over the bin shares;
- the normalised Wasserstein distance from the gap between the two empirical CDFs on the fine
  quantile grid (each fine bin at its mean value), weighted by the grid's steps;
- KS from its exact distribution (``scipy.stats.kstwo``): on continuous data D is
  distribution-free; on discrete references (few distinct values, see
  ``profile.DISCRETE_MAX_LEVELS``) it is simulated over the distinct values instead.

Bins are reference quantiles, so the counts a null pair produces depend on the reference only
through its size and its counts per fine bin (``NullShape.key``), which every tie-free column
of a given size shares. Columns with the same key are calibrated together: one simulation
gives PSI, Jensen-Shannon and Hellinger for all of them, and one set of CDF gaps gives each
column's Wasserstein null as a weighted sum. Thresholds are cached per (column, method,
window size) in the profile, so a repeated window size costs nothing.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.drift import stats
from monitor.drift.profile import (
    FINE_PER_BIN,
    NumericalProfile,
    ReferenceProfile,
)
from monitor.drift.types import Method

# Expected count per bin above which multinomial draws are replaced by normal ones.
GAUSSIAN_MIN_EXPECTED = 25.0
# Above this share of the mass in sparser bins, counts are drawn as exact multinomials.
SPARSE_MAX_SHARE = 0.05
# The same for the coarse bins of numerical columns (FINE_PER_BIN fine bins each).
COARSE_MIN_EXPECTED = GAUSSIAN_MIN_EXPECTED * FINE_PER_BIN
# Largest sample whose exact counts are tallied from uniform draws rather than binomials.
TALLY_MAX = 20_000
# Null replicates simulated at a time: the memory of a simulation stays small and fixed.
BLOCK = 500
# Binned statistics of numerical columns, all computed from one simulation per null shape.
NUMERICAL_BINNED: tuple[Method, ...] = ("psi", "jensenshannon", "hellinger")
# Statistics of the gap between two empirical CDFs, simulated jointly for tied columns.
CDF_METHODS: tuple[Method, ...] = ("ks", "wasserstein")

# A calibration request: column, methods, present values in the window.
Request = tuple[str, Sequence[Method], int]
Members = list[tuple[str, NumericalProfile, list[Method]]]
# Runs zero-argument jobs and returns their results in order (a thread pool, or inline).
Runner = Callable[[Sequence[Callable[[], np.ndarray]]], list[np.ndarray]]


@dataclass(frozen=True)
class _Plan:
    """One null distribution to simulate: ``draw(replicates, rng)`` gives one row per entry
    of ``targets`` (the (column, method) pairs whose threshold is that row's quantile) and
    one column per replicate. Blocks of replicates are drawn from generators seeded by
    (``seed``, block index), so they can run in any order, on any thread, with the same
    result; and one plan's draws never depend on what else is being calibrated."""

    seed: tuple[int, ...]
    targets: tuple[tuple[tuple[str, Method], ...], ...]
    draw: Callable[[int, np.random.Generator], np.ndarray]

    def block(self, index: int, replicates: int) -> np.ndarray:
        return self.draw(replicates, np.random.default_rng([*self.seed, index]))


def thresholds(
    profile: ReferenceProfile, column: str, methods: Sequence[Method], size: int
) -> dict[Method, float]:
    """Calibrated thresholds of ``methods`` on ``column`` for a window of ``size`` present
    values, from the cache when possible."""
    prepare(profile, [(column, methods, size)])
    return {method: _lookup(profile, column, method, size) for method in methods}


def prepare(
    profile: ReferenceProfile, requests: Iterable[Request], run: Runner | None = None
) -> None:
    """Calibrate, and cache in the profile, every threshold ``requests`` need that the cache
    lacks, simulating each null distribution once for all columns that share it; ``run``
    executes the blocks of replicates (default: one after the other)."""
    plans: list[tuple[_Plan, int]] = []
    groups: dict[tuple[bytes, int], Members] = {}
    tied: set[tuple[int, int]] = set()
    for column, methods, size in requests:
        rounded = calibration_size(size)
        missing = [
            m
            for m in methods
            if _simulated(profile, column, m)
            and profile.cached_threshold((column, m, rounded)) is None
        ]
        if not missing:
            continue
        if column in profile.categorical:
            plans.append((_categorical_plan(profile, column, missing, rounded), rounded))
        else:
            num = profile.numerical[column]
            if _tied(num, profile.settings.n_bins):
                # KS and Wasserstein from the shared simulation of the reference's tied
                # columns; the binned statistics need coarse bins only, cheap on their own
                if any(m in CDF_METHODS for m in missing):
                    tied.add((num.n, rounded))
                missing = [m for m in missing if m not in CDF_METHODS]
                if not missing:
                    continue
            groups.setdefault((num.null_shape.key, rounded), []).append((column, num, missing))
    for (_, rounded), members in groups.items():
        plans.extend((plan, rounded) for plan in _numerical_plans(profile, members, rounded))
    plans.extend((_tied_plan(profile, n, rounded), rounded) for n, rounded in sorted(tied))
    blocks = _blocks(profile.settings.calibration_replicates)
    jobs = [
        functools.partial(plan.block, index, count)
        for plan, _ in plans
        for index, count in enumerate(blocks)
    ]
    drawn = (run or _inline)(jobs)
    level = 1.0 - profile.settings.false_alarm_rate
    for i, (plan, size) in enumerate(plans):
        null = np.concatenate(drawn[i * len(blocks) : (i + 1) * len(blocks)], axis=1)
        for targets, value in zip(plan.targets, np.quantile(null, level, axis=1), strict=True):
            for column, method in targets:
                profile.store_threshold((column, method, size), float(value))


def _inline(jobs: Sequence[Callable[[], np.ndarray]]) -> list[np.ndarray]:
    return [job() for job in jobs]


def calibration_size(size: int) -> int:
    """The window size thresholds are simulated for: ``size`` rounded DOWN to two
    significant digits (9,893 -> 9,800). Missing values make the present count vary a little
    from window to window; without rounding every window would recalibrate. Rounding down
    errs on the safe side: a smaller window has a slightly higher threshold."""
    if size < 100:
        return size
    scale = int(10 ** (len(str(size)) - 2))
    return (size // scale) * scale


def _simulated(profile: ReferenceProfile, column: str, method: Method) -> bool:
    """KS on a continuous reference has an exact threshold; everything else is simulated."""
    if method != "ks":
        return True
    return profile.numerical[column].null_shape.discrete_counts is not None


def _lookup(profile: ReferenceProfile, column: str, method: Method, size: int) -> float:
    if not _simulated(profile, column, method):
        n = profile.numerical[column].n
        return _ks_exact(n, size, profile.settings.false_alarm_rate)
    value = profile.cached_threshold((column, method, calibration_size(size)))
    if value is None:  # prepare() just stored it; only a concurrent clear could remove it
        raise KeyError(f"thresholds[{column!r}, {method!r}]: not calibrated")
    return value


@functools.lru_cache(maxsize=1024)
def _ks_exact(n: int, m: int, false_alarm_rate: float) -> float:
    """The exact critical D (``scipy.stats.kstwo``; a few milliseconds, hence the cache)."""
    return stats.ks_critical(n, m, false_alarm_rate)


def _blocks(replicates: int) -> list[int]:
    return [min(BLOCK, replicates - start) for start in range(0, replicates, BLOCK)]


def _numerical_plans(profile: ReferenceProfile, members: Members, size: int) -> list[_Plan]:
    """The nulls of numerical columns sharing one null shape: binned statistics and KS once
    for all of them, Wasserstein as one weighted sum of CDF gaps per column."""
    shape = members[0][1].null_shape
    n = members[0][1].n
    seed = (profile.settings.seed, *np.frombuffer(shape.key, dtype=np.uint32).tolist(), size)
    wanted = {method for _, _, methods in members for method in methods}
    plans = []
    binned = [m for m in NUMERICAL_BINNED if m in wanted]
    if binned:
        coarse = np.add.reduceat(shape.fine_shares, shape.coarse_starts)

        def draw_binned(replicates: int, rng: np.random.Generator) -> np.ndarray:
            # Normal draws only where the fine bins would allow them too: PSI's skew at
            # tens of values per bin needs exact counts.
            return _binned_block(coarse, n, size, binned, replicates, rng, COARSE_MIN_EXPECTED)

        plans.append(_Plan((*seed, 0), _targets(members, binned), draw_binned))
    if "ks" in wanted and shape.discrete_counts is not None:
        shares = shape.discrete_counts / n

        def draw_ks(replicates: int, rng: np.random.Generator) -> np.ndarray:
            return np.asarray(_cdf_gaps(shares, n, size, replicates, rng).max(axis=0))[None, :]

        plans.append(_Plan((*seed, 2), _targets(members, ["ks"]), draw_ks))
    movers = [(column, num) for column, num, methods in members if "wasserstein" in methods]
    if movers:
        weights = np.stack(
            [num.null_shape.steps / max(num.std, stats.MIN_NORM) for _, num in movers]
        ).astype(np.float32)

        def draw_wasserstein(replicates: int, rng: np.random.Generator) -> np.ndarray:
            gaps = _cdf_gaps(shape.fine_shares, n, size, replicates, rng)
            # einsum's own loop rather than a BLAS product, whose threads stall on a busy
            # machine
            return np.asarray(np.einsum("ck,kr->cr", weights, gaps))

        wasserstein: Method = "wasserstein"
        targets = tuple(((column, wasserstein),) for column, _ in movers)
        plans.append(_Plan((*seed, 1), targets, draw_wasserstein))
    return plans


@functools.lru_cache(maxsize=64)
def _tie_free_key(n: int, n_bins: int) -> bytes:
    """The null shape every tie-free reference of ``n`` values has (fine bin counts depend
    on ranks only)."""
    return NumericalProfile.build(np.arange(n, dtype=np.float64), n_bins, "").null_shape.key


def _tied(num: NumericalProfile, n_bins: int) -> bool:
    """Whether ties give this reference a null shape of its own (no other column shares)."""
    return num.null_shape.key != _tie_free_key(num.n, n_bins)


def _tied_plan(profile: ReferenceProfile, n: int, size: int) -> _Plan:
    """KS (discrete references) and Wasserstein nulls of EVERY tied numerical column of
    ``n`` present reference values, from one simulation.

    A column's values are its reference quantile function applied to uniforms, so under the
    null its empirical CDF at a cut point (a cumulative count c of its fine or distinct-value
    bins) is the empirical CDF of n (or ``size``) uniforms at c / n. The cut points of all
    such columns are integers in (0, n): one simulation of the uniforms' CDF gaps over the
    cells between the union of cut points gives every column's gaps exactly (each column's
    marginal null is the one it would get alone), at a cost bounded by the number of
    distinct cut points, at most n - 1, however many columns are tied. The union depends on
    the profile only, so a column's thresholds do not depend on what else is calibrated."""
    members = [
        (name, num)
        for name, num in sorted(profile.numerical.items())
        if num.n == n and _tied(num, profile.settings.n_bins)
    ]
    fine_cuts = [np.cumsum(num.fine_bins())[:-1] for _, num in members]
    discrete = [num.null_shape.discrete_counts for _, num in members]
    ks_cuts = [None if d is None else np.cumsum(d)[:-1] for d in discrete]
    union = np.unique(np.concatenate([*fine_cuts, *(c for c in ks_cuts if c is not None)]))
    union = union[(union > 0) & (union < n)]
    shares = np.diff(np.concatenate([[0], union, [n]])) / n

    def rows(cuts: np.ndarray) -> np.ndarray:
        # a cut at 0 or n (an empty outer bin) has no gap: the extra zero row below
        position = np.searchsorted(union, cuts)
        inside = (cuts > 0) & (cuts < n)
        return np.where(inside, position, union.size)

    fine_rows = [rows(c) for c in fine_cuts]
    ks_rows = [None if c is None else rows(c) for c in ks_cuts]
    weights = [
        (num.null_shape.steps / max(num.std, stats.MIN_NORM)).astype(np.float32)
        for _, num in members
    ]
    ks: Method = "ks"
    wasserstein: Method = "wasserstein"
    targets: list[tuple[tuple[str, Method], ...]] = []
    for (name, _), ks_row in zip(members, ks_rows, strict=True):
        targets.append(((name, wasserstein),))
        if ks_row is not None:
            targets.append(((name, ks),))

    # Exact counts where some column's own bins need them (as _cdf_gaps decides for one
    # column); otherwise independent normal/Poisson noise per cell, whose sums over a
    # column's bins are what that column alone would draw, even where the finer union
    # cells are sparse.
    own = [num.null_shape.fine_shares for _, num in members] + [
        d / n for d in discrete if d is not None
    ]
    exact_ref, exact_cur = (
        any(_sparse_share(o, k) > SPARSE_MAX_SHARE for o in own) for k in (n, size)
    )

    cuts = [*fine_cuts, *(c for c in ks_cuts if c is not None)]
    sparse_ref, sparse_cur = (_sparse_cells(union, n, cuts, k) for k in (n, size))

    def draw(replicates: int, rng: np.random.Generator) -> np.ndarray:
        noise = _pair_noise(
            shares, (n, size), replicates, rng, (exact_ref, exact_cur), (sparse_ref, sparse_cur)
        )
        noise -= shares.astype(np.float32)[:, None] * noise.sum(axis=0)
        gaps = np.abs(np.cumsum(noise[:-1], axis=0))
        gaps = np.concatenate([gaps, np.zeros((1, replicates), dtype=gaps.dtype)])
        out = []
        for w, fine_row, ks_row in zip(weights, fine_rows, ks_rows, strict=True):
            out.append(w @ gaps[fine_row])
            if ks_row is not None:
                out.append(gaps[ks_row].max(axis=0))
        return np.stack(out)

    return _Plan((profile.settings.seed, 3, n, size), tuple(targets), draw)


def _sparse_share(shares: np.ndarray, size: int) -> float:
    """The mass in bins expecting fewer than ``GAUSSIAN_MIN_EXPECTED`` of ``size`` values."""
    return float(shares[shares * size < GAUSSIAN_MIN_EXPECTED].sum())


def _sparse_cells(union: np.ndarray, n: int, cuts: Sequence[np.ndarray], size: int) -> np.ndarray:
    """The union cells lying in a bin of some column that expects fewer than
    ``GAUSSIAN_MIN_EXPECTED`` of ``size`` values: only there do Poisson draws matter; a
    column's dense bin sums its cells' noise, normal whatever the cells' size."""
    bounds = np.concatenate([[0], union, [n]])
    marks = np.zeros(bounds.size, dtype=np.int64)
    for inner in cuts:
        edges = np.concatenate([[0], inner, [n]])
        sparse = np.diff(edges) * size / n < GAUSSIAN_MIN_EXPECTED
        np.add.at(marks, np.searchsorted(bounds, edges[:-1][sparse]), 1)
        np.add.at(marks, np.searchsorted(bounds, edges[1:][sparse]), -1)
    return np.asarray(np.cumsum(marks)[:-1] > 0)


def _pair_noise(
    shares: np.ndarray,
    sizes: tuple[int, int],
    replicates: int,
    rng: np.random.Generator,
    exact: tuple[bool, bool],
    sparse: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """The reference's cell shares minus the window's, both minus ``shares``, to be
    projected (see ``_cdf_gaps``): shape (cells, replicates), float32. Where neither sample
    is exact nor sparse, the two independent normal draws are ONE normal draw of variance
    p (1/n + 1/m), the same distribution at half the cost; elsewhere each sample is drawn
    on its own (``_cell_noise``)."""
    (n, m), (sparse_n, sparse_m) = sizes, sparse
    if any(exact):
        noise = _cell_noise(shares, n, replicates, rng, exact[0], sparse_n)
        noise -= _cell_noise(shares, m, replicates, rng, exact[1], sparse_m)
        return noise
    noise = np.empty((shares.size, replicates), dtype=np.float32)
    both = ~(sparse_n | sparse_m)
    body = rng.standard_normal((int(both.sum()), replicates), dtype=np.float32)
    body *= np.sqrt(shares[both] * (1 / n + 1 / m)).astype(np.float32)[:, None]
    noise[both] = body
    rest = ~both
    if rest.any():
        part = _cell_noise(shares[rest], n, replicates, rng, False, sparse_n[rest])
        part -= _cell_noise(shares[rest], m, replicates, rng, False, sparse_m[rest])
        noise[rest] = part
    return noise


def _cell_noise(
    shares: np.ndarray,
    size: int,
    replicates: int,
    rng: np.random.Generator,
    exact: bool,
    sparse: np.ndarray,
) -> np.ndarray:
    """One sample's cell shares minus ``shares``, shape (cells, replicates), float32: exact
    multinomial shares, or independent noise to be projected (see ``_cdf_gaps``). Exact
    counts of a sample smaller than the cells are tallied from ``size`` uniform draws
    (cost ``size``, not one binomial per cell)."""
    if not exact:
        # normal draws only where no Poisson draw replaces them
        noise = np.empty((shares.size, replicates), dtype=np.float32)
        dense = ~sparse
        body = rng.standard_normal((int(dense.sum()), replicates), dtype=np.float32)
        body *= np.sqrt(shares[dense] / size).astype(np.float32)[:, None]
        noise[dense] = body
        if sparse.any():
            noise[sparse] = _poisson_cells(shares[sparse], size, replicates, rng)
        return noise
    if size <= min(shares.size, TALLY_MAX):
        cells = np.searchsorted(np.cumsum(shares[:-1]), rng.random((replicates, size)), "right")
        cells += (np.arange(replicates) * shares.size)[:, None]
        flat = np.bincount(cells.ravel(), minlength=replicates * shares.size)
        counts = flat.reshape(replicates, shares.size).T
    else:
        counts = rng.multinomial(size, shares, size=replicates).T
    return np.asarray(counts / size - shares[:, None], dtype=np.float32)


def _targets(
    members: Members, methods: Sequence[Method]
) -> tuple[tuple[tuple[str, Method], ...], ...]:
    """Per method, every (column, method) of ``members`` that asked for it."""
    return tuple(
        tuple((column, method) for column, _, wanted in members if method in wanted)
        for method in methods
    )


def _binned_block(
    shares: np.ndarray,
    n: int,
    m: int,
    methods: Sequence[Method],
    replicates: int,
    rng: np.random.Generator,
    min_expected: float = GAUSSIAN_MIN_EXPECTED,
) -> np.ndarray:
    """Binned ``methods`` (rows) on null pairs of (reference, window) counts (columns)."""
    ref = _counts(shares, n, replicates, rng, min_expected)
    cur = _counts(shares, m, replicates, rng, min_expected)
    return np.stack([stats.BINNED[method](ref, cur) for method in methods])


def _counts(
    shares: np.ndarray,
    size: int,
    replicates: int,
    rng: np.random.Generator,
    min_expected: float = GAUSSIAN_MIN_EXPECTED,
) -> np.ndarray:
    """``replicates`` multinomial count vectors of ``size`` draws over bins with ``shares``.

    Drawing exact multinomials costs one binomial per bin and replicate; when most of the
    mass sits in bins expecting at least ``min_expected`` values, those bins are
    drawn from the normal distribution with the multinomial's mean and covariance
    (size * (diag(p) - p p^T)) and the few sparse (tail) bins from independent Poissons:
    an order of magnitude cheaper and indistinguishable at such counts."""
    expected = size * shares
    dense = expected >= min_expected
    if shares[~dense].sum() > SPARSE_MAX_SHARE:
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


def _cdf_gaps(
    shares: np.ndarray, n: int, m: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """|F_ref - F_cur| at the inner bin edges for ``replicates`` null pairs of a reference of
    ``n`` and a window of ``m`` values over bins with ``shares``: shape (bins - 1,
    replicates), bins first so that the cumulative sum runs over contiguous rows.

    A sample's bin shares are drawn as independent noise of variance p / size per bin
    (normal in bins expecting ``GAUSSIAN_MIN_EXPECTED`` values or more, Poisson below), then
    projected to sum to zero: subtracting p times the total turns the covariance into the
    multinomial's (diag(p) - p p^T) / size. Exact multinomials are drawn instead when the
    sparse bins hold more than ``SPARSE_MAX_SHARE`` of the mass. When both samples are in
    the normal regime, the difference's noise in the dense bins is ONE normal draw of
    variance p (1/n + 1/m): half the work."""
    dense = shares * min(n, m) >= GAUSSIAN_MIN_EXPECTED
    if shares[~dense].sum() <= SPARSE_MAX_SHARE:
        noise = rng.standard_normal((shares.size, replicates), dtype=np.float32)
        noise *= np.sqrt(shares * (1 / n + 1 / m)).astype(np.float32)[:, None]
        if not dense.all():
            sparse = shares[~dense]
            noise[~dense] = _poisson_noise(sparse, n, replicates, rng)
            noise[~dense] -= _poisson_noise(sparse, m, replicates, rng)
    else:
        noise = _share_noise(shares, n, replicates, rng)
        noise -= _share_noise(shares, m, replicates, rng)
    # The projection also matters beyond second order: without it the noise's total would
    # pile up in the upper tail's gaps, where the heaviest Wasserstein weights sit.
    noise -= shares.astype(np.float32)[:, None] * noise.sum(axis=0)
    gaps = np.cumsum(noise[:-1], axis=0)
    return np.abs(gaps, out=gaps)


def _share_noise(
    shares: np.ndarray, size: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """One sample's bin shares minus ``shares``, shape (bins, replicates), float32: exact
    multinomial shares, or independent noise to be projected (see ``_cdf_gaps``)."""
    dense = shares * size >= GAUSSIAN_MIN_EXPECTED
    if shares[~dense].sum() > SPARSE_MAX_SHARE:
        counts = rng.multinomial(size, shares, size=replicates).T
        return np.asarray(counts / size - shares[:, None], dtype=np.float32)
    noise = rng.standard_normal((shares.size, replicates), dtype=np.float32)
    noise *= np.sqrt(shares / size).astype(np.float32)[:, None]
    if not dense.all():
        noise[~dense] = _poisson_noise(shares[~dense], size, replicates, rng)
    return noise


def _poisson_noise(
    shares: np.ndarray, size: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """Independent Poisson counts over sparse bins, as shares minus ``shares``."""
    counts = rng.poisson(size * shares[:, None], size=(shares.size, replicates))
    return np.asarray(counts / size - shares[:, None], dtype=np.float32)


def _poisson_cells(
    shares: np.ndarray, size: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """``_poisson_noise``'s independent Poisson counts, drawn faster: by inverse CDF, with
    scipy's guide-table sampler (``DiscreteGuideTable``), one table per distinct mean. The
    cells' means are their reference counts times ``size / n``, so they take few distinct
    values, and a draw costs about one uniform where numpy's small-mean Poisson costs one
    per unit of mean, plus one. The table stops at ``mean + 12 sqrt(mean) + 12``, which a
    Poisson count exceeds with probability below 1e-15 at any mean (sparse cells expect
    fewer than ``GAUSSIAN_MIN_EXPECTED``)."""
    from scipy.stats.sampling import DiscreteGuideTable

    means, cell_mean = np.unique(size * shares, return_inverse=True)
    counts = np.empty((shares.size, replicates), dtype=np.float32)
    for index, mean in enumerate(means.tolist()):
        rows = np.flatnonzero(cell_mean == index)
        sampler = DiscreteGuideTable(_poisson_pmf(mean), random_state=rng)
        counts[rows] = sampler.rvs((rows.size, replicates))
    counts /= np.float32(size)
    counts -= shares.astype(np.float32)[:, None]
    return counts


@functools.lru_cache(maxsize=4096)
def _poisson_pmf(mean: float) -> np.ndarray:
    """``scipy.stats.poisson.pmf`` from 0 to ``mean + 12 sqrt(mean) + 12``."""
    from scipy import stats

    support = np.arange(int(mean + 12 * np.sqrt(mean) + 12) + 1)
    return np.asarray(stats.poisson.pmf(support, mean))


def _categorical_plan(
    profile: ReferenceProfile, column: str, methods: Sequence[Method], size: int
) -> _Plan:
    cat = profile.categorical[column]
    # Half a count added to every category and to one unseen category: with a small
    # reference, rare categories are under- or unrepresented, and a null drawn from the raw
    # shares would never produce the window's share of them.
    smoothed = np.append(cat.counts, 0) + 0.5
    shares = smoothed / smoothed.sum()
    n = cat.n

    def draw(replicates: int, rng: np.random.Generator) -> np.ndarray:
        return _binned_block(shares, n, size, methods, replicates, rng)

    seed = (profile.settings.seed, zlib.crc32(column.encode()), size)
    return _Plan(seed, tuple(((column, m),) for m in methods), draw)
