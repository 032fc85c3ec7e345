"""Shadow comparison of a window: agreement and divergence, checked against statsmodels
(Wilson interval) and a direct computation of the paired t interval and test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from monitor.performance.shadow import compare_shadow


@pytest.mark.parametrize(
    ("n", "differ"), [(50, 0), (200, 7), (1000, 500), (40, 40)], ids=["none", "few", "half", "all"]
)
def test_disagreement_share_has_the_wilson_interval(n: int, differ: int) -> None:
    production = ["a"] * n
    shadow = ["b"] * differ + ["a"] * (n - differ)
    result = compare_shadow("categorical", production, shadow, min_pairs=1)
    assert result.status == "ok" and result.n_pairs == n
    d = result.divergence
    assert d is not None and d.measure == "disagreement_share"
    assert d.value == pytest.approx(differ / n)
    assert result.agreement == pytest.approx(1 - differ / n)
    low, high = proportion_confint(differ, n, alpha=0.05, method="wilson")
    assert (d.lower, d.upper) == (pytest.approx(low), pytest.approx(high))
    assert d.lower <= d.value <= d.upper


def test_categorical_values_compare_as_text_and_confidence_is_used() -> None:
    production = [1, 2, 3, 1] * 25
    shadow = ["1", "2", "3", "2"] * 25  # one in four differs; 1 and "1" are the same class
    result = compare_shadow("categorical", production, shadow, min_pairs=1, confidence=0.9)
    assert result.divergence is not None and result.divergence.value == pytest.approx(0.25)
    low, high = proportion_confint(25, 100, alpha=0.1, method="wilson")
    assert result.divergence.lower == pytest.approx(low)
    assert result.divergence.upper == pytest.approx(high)


def test_paired_differences_match_a_direct_paired_t() -> None:
    rng = np.random.default_rng(3)
    production = rng.normal(10.0, 2.0, 400)
    shadow = production + rng.normal(0.3, 1.0, 400)
    result = compare_shadow("numerical", production.tolist(), shadow.tolist(), tolerance=0.5)
    d = result.divergence
    assert result.status == "ok" and d is not None and d.measure == "mean_difference"
    diff = shadow - production
    n = len(diff)
    se = diff.std(ddof=1) / math.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    assert d.value == pytest.approx(diff.mean())
    assert (d.lower, d.upper) == (
        pytest.approx(diff.mean() - half),
        pytest.approx(diff.mean() + half),
    )
    # The paired test is the one-sample t-test of the differences against zero.
    assert d.p_value == pytest.approx(stats.ttest_1samp(diff, 0.0).pvalue)
    assert result.agreement == pytest.approx(np.mean(np.abs(diff) <= 0.5))
    assert result.mean_abs_difference == pytest.approx(np.mean(np.abs(diff)))


def test_identical_numerical_predictions_agree_exactly() -> None:
    values = [1.0, 2.5, 3.0] * 20
    result = compare_shadow("numerical", values, values)
    d = result.divergence
    assert d is not None and (d.value, d.lower, d.upper, d.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert result.agreement == 1.0


def test_only_records_with_both_predictions_are_paired() -> None:
    production = ["a", None, "a", "b", float("nan")] * 10
    shadow = ["a", "a", None, "a", "a"] * 10
    result = compare_shadow("categorical", production, shadow, min_pairs=1)
    assert (result.n_rows, result.n_pairs) == (50, 20)
    assert result.divergence is not None and result.divergence.value == pytest.approx(0.5)


def test_too_few_pairs_give_no_figures() -> None:
    result = compare_shadow("categorical", ["a"] * 29 + [None], ["a"] * 30, min_pairs=30)
    assert result.status == "insufficient_data" and result.n_pairs == 29
    assert result.divergence is None and result.agreement is None
    stored = result.to_json()
    assert stored["divergence"] is None and stored["status"] == "insufficient_data"


def test_stored_form_names_the_interval() -> None:
    categorical = compare_shadow("categorical", ["a", "b"] * 20, ["a", "a"] * 20).to_json()
    assert categorical["divergence"]["interval"] == "wilson"
    assert "mean_abs_difference" not in categorical
    numerical = compare_shadow("numerical", [1.0, 2.0] * 20, [1.5, 2.0] * 20).to_json()
    assert numerical["divergence"]["interval"] == "paired-t"
    assert numerical["mean_abs_difference"] == pytest.approx(0.25)
