"""The drift statistics agree with independent references (scipy, Evidently) on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import spatial, stats

from monitor.drift import ColumnSpec, DriftSettings, build_profile, compare
from monitor.drift import stats as drift_stats


def _numeric_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        (rng.normal(size=5_000), rng.normal(0.1, size=800)),  # exact p-value path
        (rng.normal(size=30_000), rng.normal(0.02, 1.1, size=8_000)),  # asymptotic path
        (rng.lognormal(size=12_000), rng.lognormal(0.05, size=3_000)),
        (rng.integers(0, 5, 4_000).astype(float), rng.integers(0, 6, 900).astype(float)),  # ties
    ]


PAIR_IDS = ["normal-exact", "normal-asymptotic", "lognormal", "discrete-ties"]


def _result(
    reference: np.ndarray, current: np.ndarray, method: str, exact_max_en: float = 10_000
) -> tuple[float, float | None]:
    spec = ColumnSpec("x", "numerical", (method,))  # type: ignore[arg-type]
    settings = DriftSettings(threshold_mode="fixed", ks_exact_max_en=exact_max_en)
    profile = build_profile({"x": reference}, [spec], settings)
    result = compare(profile, {"x": current}).columns[0].results[0]
    return result.statistic, result.p_value


@pytest.mark.parametrize(("reference", "current"), _numeric_pairs(), ids=PAIR_IDS)
def test_ks_equals_scipy_ks_2samp(reference: np.ndarray, current: np.ndarray) -> None:
    d, p = _result(reference, current, "ks")
    expected = stats.ks_2samp(reference, current)
    assert d == pytest.approx(expected.statistic, rel=1e-12, abs=1e-15)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("shift", [0.0, 0.015, 0.035], ids=["p-0.84", "p-0.005", "p-4e-10"])
def test_ks_on_large_samples_is_close_to_scipy_or_exact_on_request(shift: float) -> None:
    rng = np.random.default_rng(17)
    reference, current = rng.normal(size=120_000), rng.normal(shift, 1.0, 60_000)  # en = 40,000
    expected = stats.ks_2samp(reference, current)
    d, p = _result(reference, current, "ks")
    assert d == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=2e-2)  # Kolmogorov limit, Stephens-corrected
    _, exact = _result(reference, current, "ks", exact_max_en=1e9)
    assert exact == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("reference", "current"), _numeric_pairs(), ids=PAIR_IDS)
def test_wasserstein_equals_evidently_normed_wasserstein(
    reference: np.ndarray, current: np.ndarray
) -> None:
    with warnings.catch_warnings():  # Evidently's imports warn about numpy internals
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (
            _wasserstein_distance_norm,
        )
        from evidently.legacy.core import ColumnType

    w, p = _result(reference, current, "wasserstein")
    expected, _ = _wasserstein_distance_norm(
        pd.Series(reference), pd.Series(current), ColumnType.Numerical, 0.1
    )
    assert p is None
    assert w == pytest.approx(expected, rel=1e-9)


def _table_cases() -> list[tuple[list[int], list[int]]]:
    return [
        ([500, 300, 200], [40, 35, 25]),
        ([10, 0, 5, 90], [3, 2, 0, 20]),  # a category absent from the reference
        ([1000, 1], [999, 12]),  # two categories: still no Yates correction
    ]


@pytest.mark.parametrize(
    ("ref", "cur"), _table_cases(), ids=["three-levels", "zero-cells", "two-levels"]
)
def test_chi2_is_scipy_chi2_contingency_on_the_2xk_table(ref: list[int], cur: list[int]) -> None:
    statistic = float(drift_stats.chi2(np.array([ref]), np.array([cur]))[0])
    p = drift_stats.chi2_pvalue(np.array(ref), np.array(cur), statistic)
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_categorical_chi2_through_compare_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    reference = rng.choice(["a", "b", "c", "d"], 20_000, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    current = rng.choice(["a", "b", "c", "d", "e"], 2_000, p=[0.38, 0.3, 0.2, 0.1, 0.02])
    spec = ColumnSpec("c", "categorical")
    profile = build_profile({"c": reference}, [spec], DriftSettings(threshold_mode="fixed"))
    column = compare(profile, {"c": current.astype(object)}).columns[0]
    chi2 = column.results[0]
    levels = ["a", "b", "c", "d", "e"]
    table = np.array(
        [[np.sum(reference == v) for v in levels], [np.sum(current == v) for v in levels]]
    )
    expected = stats.chi2_contingency(table, correction=False)
    assert chi2.method == "chi2"
    assert chi2.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert chi2.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert column.quality.new_categories == ("e",)


def test_binned_distances_match_scipy_and_hand_formulas() -> None:
    ref = np.array([[40.0, 30.0, 20.0, 10.0]])
    cur = np.array([[25.0, 25.0, 25.0, 25.0]])
    p, q = ref[0] / ref.sum(), cur[0] / cur.sum()
    assert drift_stats.jensenshannon(ref, cur)[0] == pytest.approx(
        spatial.distance.jensenshannon(p, q), rel=1e-12
    )
    assert drift_stats.psi(ref, cur)[0] == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert drift_stats.hellinger(ref, cur)[0] == pytest.approx(
        np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    )
    assert drift_stats.linf(ref, cur)[0] == pytest.approx(0.15)
