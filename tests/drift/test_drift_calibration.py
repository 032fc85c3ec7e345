"""Calibrated thresholds agree with direct simulation of each statistic, and with scipy where
scipy has the null distribution.

Each check is made in rate space: a calibrated threshold is right when direct simulations of
the statistic under "no drift" exceed it about ``false_alarm_rate`` (1%) of the time. Both
sides are Monte-Carlo estimates, so the accepted band is 3.5 standard errors of their
combined noise around 1% (every test is seeded, hence deterministic).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from monitor.drift import ColumnSpec, DriftSettings, Method, build_profile, calibrate
from monitor.drift import compare as calibrate_window
from monitor.drift import stats as drift_stats
from monitor.drift.profile import bin_counts

RATE = 0.01
REPLICATES = 4_000  # calibration replicates (the default is 2,000)

Sampler = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
CONTINUOUS: dict[str, Sampler] = {
    "normal": lambda rng, shape: rng.normal(size=shape),
    "lognormal": lambda rng, shape: rng.lognormal(size=shape),
    "student-t3": lambda rng, shape: rng.standard_t(3, size=shape),
}
DISCRETE: dict[str, Sampler] = {
    "poisson-3": lambda rng, shape: rng.poisson(3.0, size=shape).astype(float),
    "integers-10": lambda rng, shape: rng.integers(0, 10, size=shape).astype(float),
    "normal-rounded": lambda rng, shape: np.round(rng.normal(size=shape), 1),
}


def _within_band(oracle: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """(lower, exceedance, upper): the share of ``oracle`` above ``threshold`` and the band
    it must lie in."""
    noise = np.sqrt(RATE * (1 - RATE) * (1 / oracle.size + 1 / REPLICATES))
    return RATE - 3.5 * noise, float(np.mean(oracle > threshold)), RATE + 3.5 * noise


def _threshold(reference: np.ndarray, kind: str, method: Method, size: int, seed: int = 0) -> float:
    settings = DriftSettings(seed=seed, calibration_replicates=REPLICATES)
    profile = build_profile({"x": reference}, [ColumnSpec("x", kind, (method,))], settings)  # type: ignore[arg-type]
    return calibrate.thresholds(profile, "x", [method], size)[method]


def _ks_statistics(sample: Sampler, n: int, m: int, reps: int, seed: int) -> np.ndarray:
    """D of ``reps`` fresh (reference, window) pairs drawn from the same distribution."""
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for i in range(reps):
        ref, cur = np.sort(sample(rng, (n,))), np.sort(sample(rng, (m,)))
        out[i] = drift_stats.ks_wasserstein(ref, cur)[0]
    return out


@pytest.mark.parametrize("name", list(CONTINUOUS), ids=list(CONTINUOUS))
def test_ks_on_continuous_data_is_scipys_exact_critical_value(name: str) -> None:
    reference = CONTINUOUS[name](np.random.default_rng(1), (4_000,))
    expected = stats.kstwo.isf(RATE, round(4_000 * 1_000 / 5_000))
    assert _threshold(reference, "numerical", "ks", 1_000) == pytest.approx(expected, rel=1e-12)


def test_scipys_ks_critical_value_holds_the_rate_in_direct_simulation() -> None:
    # D is distribution-free on continuous data: uniform draws stand for every distribution
    oracle = _ks_statistics(CONTINUOUS["normal"], 4_000, 1_000, 4_000, seed=2)
    reference = CONTINUOUS["normal"](np.random.default_rng(3), (4_000,))
    lower, rate, upper = _within_band(oracle, _threshold(reference, "numerical", "ks", 1_000))
    assert lower <= rate <= upper


@pytest.mark.parametrize("name", list(DISCRETE), ids=list(DISCRETE))
def test_ks_on_a_discrete_reference_is_simulated_over_its_values(name: str) -> None:
    sample = DISCRETE[name]
    reference = sample(np.random.default_rng(4), (4_000,))
    threshold = _threshold(reference, "numerical", "ks", 1_000)
    # ties make D smaller: the continuous critical value fires too rarely
    continuous = stats.kstwo.isf(RATE, round(4_000 * 1_000 / 5_000))
    assert threshold < continuous
    oracle = _ks_statistics(sample, 4_000, 1_000, 4_000, seed=5)
    assert float(np.mean(oracle > continuous)) < RATE
    lower, rate, upper = _within_band(oracle, threshold)
    assert lower <= rate <= upper


def _binned_oracle(method: Method, n: int, m: int, reps: int, seed: int) -> np.ndarray:
    """The statistic on reference-quantile bins for ``reps`` fresh (reference, window) pairs.
    Counts in quantile bins are distribution-free on continuous data: uniforms will do."""
    rng = np.random.default_rng(seed)
    levels = np.arange(1, 20) / 20
    out = np.empty(reps)
    for i in range(reps):
        ref, cur = np.sort(rng.random(n)), np.sort(rng.random(m))
        edges = np.quantile(ref, levels)
        counts = bin_counts(ref, edges)[None, :], bin_counts(cur, edges)[None, :]
        out[i] = drift_stats.BINNED[method](*counts)[0]
    return out


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "hellinger"], ids=lambda m: m)
@pytest.mark.parametrize(
    ("n", "m", "reps"),
    [(4_000, 1_000, 4_000), (40_000, 20_000, 2_000)],
    ids=["exact-counts", "normal-counts"],
)
def test_binned_thresholds_agree_with_direct_simulation(
    method: Method, n: int, m: int, reps: int
) -> None:
    oracle = _binned_oracle(method, n, m, reps, seed=6)
    for name, sample in CONTINUOUS.items():
        reference = sample(np.random.default_rng(7), (n,))
        lower, rate, upper = _within_band(oracle, _threshold(reference, "numerical", method, m))
        assert lower <= rate <= upper, name


def _resampled_wasserstein(reference: np.ndarray, m: int, reps: int, seed: int) -> np.ndarray:
    """Normalised W1 between a reference-sized and an ``m``-sized sample drawn from the
    reference (uniform indices into it): the null calibration estimates, directly."""
    rng = np.random.default_rng(seed)
    n = reference.size
    assert n % m == 0
    norm = max(float(np.std(reference)), drift_stats.MIN_NORM)
    out = []
    for start in range(0, reps, 250):
        block = min(250, reps - start)
        ref = np.sort(reference[rng.integers(0, n, (block, n))], axis=1)
        cur = np.sort(reference[rng.integers(0, n, (block, m))], axis=1)
        # with n a multiple of m both quantile functions are steps on the 1/n grid
        out.append(np.abs(ref - np.repeat(cur, n // m, axis=1)).mean(axis=1) / norm)
    return np.concatenate(out)


@pytest.mark.parametrize("name", list(CONTINUOUS), ids=list(CONTINUOUS))
@pytest.mark.parametrize(
    ("n", "m", "reps"),
    [(4_000, 1_000, 4_000), (16_000, 16_000, 2_000)],
    ids=["exact-counts", "normal-counts"],
)
def test_wasserstein_threshold_agrees_with_resampling_the_reference(
    name: str, n: int, m: int, reps: int
) -> None:
    reference = CONTINUOUS[name](np.random.default_rng(8), (n,))
    threshold = _threshold(reference, "numerical", "wasserstein", m)
    oracle = _resampled_wasserstein(np.sort(reference), m, reps, seed=9)
    lower, rate, upper = _within_band(oracle, threshold)
    assert lower <= rate <= upper


TIED: dict[str, Sampler] = {
    **DISCRETE,
    # tied, yet too many distinct values to count as discrete
    "lognormal-2-decimals": lambda rng, shape: np.round(rng.lognormal(size=shape), 2),
}


@pytest.mark.parametrize("name", list(TIED), ids=list(TIED))
def test_tied_wasserstein_and_ks_agree_with_resampling_the_reference(name: str) -> None:
    reference = TIED[name](np.random.default_rng(16), (4_000,))
    settings = DriftSettings(calibration_replicates=REPLICATES)
    spec = [ColumnSpec("x", "numerical", ("wasserstein", "ks"))]
    profile = build_profile({"x": reference}, spec, settings)
    assert calibrate._tied(profile.numerical["x"], settings.n_bins)  # the shared-cuts path
    limits = calibrate.thresholds(profile, "x", ["wasserstein", "ks"], 1_000)
    oracle = _resampled_wasserstein(np.sort(reference), 1_000, 4_000, seed=17)
    lower, rate, upper = _within_band(oracle, limits["wasserstein"])
    assert lower <= rate <= upper
    if profile.numerical["x"].null_shape.discrete_counts is not None:
        d = _ks_statistics(lambda rng, shape: rng.choice(reference, shape), 4_000, 1_000, 4_000, 18)
        lower, rate, upper = _within_band(d, limits["ks"])
        assert lower <= rate <= upper


def test_tied_columns_share_one_simulation_whatever_is_calibrated_with_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plans: list[tuple[int, int]] = []
    tied_plan = calibrate._tied_plan
    monkeypatch.setattr(
        calibrate,
        "_tied_plan",
        lambda profile, n, size: plans.append((n, size)) or tied_plan(profile, n, size),
    )
    rng = np.random.default_rng(19)
    reference = {name: sample(rng, (5_000,)) for name, sample in TIED.items()}
    reference["free"] = rng.normal(size=5_000)
    columns = [ColumnSpec(name, "numerical") for name in reference]
    methods: list[Method] = ["ks", "wasserstein", "psi"]
    together = build_profile(reference, columns, DriftSettings(seed=3))
    calibrate.prepare(together, [(name, methods, 800) for name in reference])
    assert plans == [(5_000, 800)]  # one simulation for the four tied columns
    alone = build_profile(reference, columns, DriftSettings(seed=3))
    for name in reversed(list(reference)):
        calibrate.thresholds(alone, name, methods, 800)
    assert alone.thresholds == together.thresholds
    # every tied column's Wasserstein differs (its own cuts and steps), from one simulation
    assert len({together.thresholds[(name, "wasserstein", 800)] for name in TIED}) == len(TIED)


def _categorical_oracle(
    method: Method, shares: np.ndarray, n: int, m: int, reps: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ref = rng.multinomial(n, shares, size=reps)
    cur = rng.multinomial(m, shares, size=reps)
    return np.asarray(drift_stats.BINNED[method](ref, cur))


@pytest.mark.parametrize("method", ["chi2", "jensenshannon", "psi", "linf"], ids=lambda m: m)
@pytest.mark.parametrize("levels", [3, 10, 50], ids=lambda k: f"{k}-levels")
def test_categorical_thresholds_agree_with_direct_simulation(method: Method, levels: int) -> None:
    shares = np.random.default_rng(levels).dirichlet(np.ones(levels) * 2)
    names = np.array([f"c{i}" for i in range(levels)], dtype=object)
    reference = names[np.random.default_rng(10).choice(levels, 20_000, p=shares)]
    oracle = _categorical_oracle(method, shares, 20_000, 2_000, 20_000, seed=11)
    lower, rate, upper = _within_band(oracle, _threshold(reference, "categorical", method, 2_000))
    if method == "chi2" and levels == 3:
        # The null's unseen-category bucket (half a count) adds a table column whenever it
        # draws a value, up to one degree of freedom: with few levels that is conservative.
        assert rate <= upper
    else:
        assert lower <= rate <= upper


@pytest.mark.parametrize("levels", [3, 10, 50], ids=lambda k: f"{k}-levels")
def test_chi2_threshold_on_large_samples_lies_between_scipys_chi2_quantiles(levels: int) -> None:
    shares = np.random.default_rng(levels).dirichlet(np.ones(levels) * 2)
    names = np.array([f"c{i}" for i in range(levels)], dtype=object)
    reference = names[np.random.default_rng(12).choice(levels, 200_000, p=shares)]
    threshold = _threshold(reference, "categorical", "chi2", 200_000)
    # The homogeneity statistic is chi-square with levels - 1 degrees of freedom in the
    # limit; the null's unseen-category bucket adds at most one more.
    lower, upper = stats.chi2.isf(RATE, levels - 1), stats.chi2.isf(RATE, levels)
    assert 0.97 * lower <= threshold <= 1.03 * upper


def test_columns_sharing_a_null_are_calibrated_once_and_consistently() -> None:
    rng = np.random.default_rng(13)
    reference = {name: sample(rng, (5_000,)) for name, sample in CONTINUOUS.items()}
    columns = [ColumnSpec(name, "numerical") for name in CONTINUOUS]
    methods: list[Method] = ["wasserstein", "psi", "jensenshannon", "hellinger"]
    together = build_profile(reference, columns, DriftSettings(seed=1))
    calibrate.prepare(together, [(name, methods, 1_000) for name in CONTINUOUS])
    keys = {together.numerical[name].null_shape.key for name in CONTINUOUS}
    assert len(keys) == 1  # tie-free references of one size share their null
    for method in ("psi", "jensenshannon", "hellinger"):
        assert len({together.thresholds[(name, method, 1_000)] for name in CONTINUOUS}) == 1
    moved = {together.thresholds[(name, "wasserstein", 1_000)] for name in CONTINUOUS}
    assert len(moved) == 3  # Wasserstein depends on each column's shape
    # one column at a time, in another order, gives the very same thresholds
    alone = build_profile(reference, columns, DriftSettings(seed=1))
    for name in reversed(CONTINUOUS):
        calibrate.thresholds(alone, name, methods, 1_000)
    assert alone.thresholds == together.thresholds


def test_a_mostly_continuous_reference_with_ties_keeps_the_continuous_ks_value() -> None:
    # a third of the values tied at zero, the rest continuous: too many distinct values to
    # simulate over, so the exact continuous value stays (conservative with ties)
    rng = np.random.default_rng(14)
    reference = np.where(rng.random(6_000) < 0.3, 0.0, rng.normal(size=6_000))
    expected = stats.kstwo.isf(RATE, round(6_000 * 1_000 / 7_000))
    assert _threshold(reference, "numerical", "ks", 1_000) == pytest.approx(expected)


def test_thresholds_do_not_depend_on_the_number_of_threads() -> None:
    rng = np.random.default_rng(15)
    reference = {
        "a": rng.normal(size=30_000),
        "b": rng.lognormal(size=30_000),
        "c": rng.poisson(2.0, 30_000).astype(float),
        "k": rng.choice(np.array(["x", "y", "z"], dtype=object), 30_000),
    }
    window = {
        "a": rng.normal(size=20_000),
        "b": rng.lognormal(size=20_000),
        "c": rng.poisson(2.0, 20_000).astype(float),
        "k": rng.choice(np.array(["x", "y", "z"], dtype=object), 20_000),
    }
    columns = [ColumnSpec(name, "categorical" if name == "k" else "numerical") for name in "abck"]
    calibrated = []
    for workers in (1, 2, 4):
        profile = build_profile(reference, columns, DriftSettings(seed=2, workers=workers))
        compare_result = [
            (c.column, r.method, r.threshold)
            for c in calibrate_window(profile, window).columns
            for r in c.results
        ]
        calibrated.append((profile.thresholds, compare_result))
    assert calibrated[0] == calibrated[1] == calibrated[2]


def test_tied_cells_poisson_counts_follow_scipys_poisson() -> None:
    # the sparse cells of the tied simulation: means of 0.02 to 24, several cells per mean
    n, size = 100_000, 50_000
    cell_counts = np.repeat([0.04, 1, 3, 7, 20, 48], 4) * 1.0
    shares = cell_counts / n
    noise = calibrate._poisson_cells(shares, size, 4_000, np.random.default_rng(23))
    counts = np.rint((noise + shares.astype(np.float32)[:, None]) * size).astype(np.int64)
    for rows, mean in zip(np.split(counts, 6), np.unique(size * shares), strict=True):
        values = rows.ravel()
        top = int(stats.poisson.isf(1e-4, mean)) + 1
        observed = np.bincount(np.minimum(values, top), minlength=top + 1)
        expected = stats.poisson.pmf(np.arange(top + 1), mean)
        expected[-1] = stats.poisson.sf(top - 1, mean)
        keep = expected * values.size >= 5  # chi-square's validity; the rest pooled
        pooled = np.append(observed[keep], observed[~keep].sum())
        wanted = np.append(expected[keep], expected[~keep].sum()) * values.size
        if wanted[-1] == 0:
            pooled, wanted = pooled[:-1], wanted[:-1]
        assert stats.chisquare(pooled, wanted * pooled.sum() / wanted.sum()).pvalue > 1e-3
        assert values.mean() == pytest.approx(mean, rel=0.05, abs=0.01)
