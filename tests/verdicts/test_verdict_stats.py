"""Paired tests against independent references: scipy's binomial and bootstrap, the
textbook McNemar and Holm definitions, and seeded simulations for coverage and power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.verdicts import (
    Comparison,
    Policy,
    agresti_min_interval,
    cases_needed_binary,
    holm,
    judge,
    mcnemar_exact,
    overall,
    paired_bootstrap,
    wilcoxon,
)


def binary_runs(n: int, b: int, c: int, both: int) -> tuple[list[float], list[float]]:
    """Paired 0/1 scores with ``b`` pass->fail, ``c`` fail->pass and ``both`` pass->pass."""
    base = [1.0] * b + [0.0] * c + [1.0] * both + [0.0] * (n - b - c - both)
    new = [0.0] * b + [1.0] * c + [1.0] * both + [0.0] * (n - b - c - both)
    return base, new


@pytest.mark.parametrize(("b", "c"), [(10, 2), (3, 3), (0, 7), (25, 11), (1, 0)], ids=str)
def test_mcnemar_exact_equals_the_binomial_definition(b: int, c: int) -> None:
    base, new = binary_runs(100, b, c, 60)
    test = mcnemar_exact(base, new)
    # statsmodels' exact McNemar: twice the lower binomial tail of min(b, c), capped at 1.
    reference = min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5))
    assert test.p_value == pytest.approx(reference)
    assert test.p_less == pytest.approx(
        stats.binomtest(c, b + c, 0.5, alternative="less").pvalue if b + c else 1.0
    )
    assert test.p_greater == pytest.approx(
        stats.binomtest(b, b + c, 0.5, alternative="less").pvalue if b + c else 1.0
    )
    assert (test.degraded, test.improved, test.n) == (b, c, 100)
    assert test.delta == pytest.approx((c - b) / 100)


def test_mcnemar_refuses_non_binary_scores() -> None:
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0.5], [1.0])


def test_z95_is_scipys_normal_quantile() -> None:
    from monitor.verdicts.stats import Z95

    assert stats.norm.ppf(0.975) == Z95  # exactly: it is written out to spare scipy's import


def test_agresti_min_interval_covers_95_percent() -> None:
    rng = np.random.default_rng(7)
    n, p_b, p_c, covered = 200, 0.08, 0.04, 0
    for _ in range(2000):
        cells = rng.multinomial(n, [p_b, p_c, 1 - p_b - p_c])
        lower, upper = agresti_min_interval(int(cells[0]), int(cells[1]), n)
        covered += lower <= p_c - p_b <= upper
    assert 0.93 <= covered / 2000 <= 0.975


def test_paired_bootstrap_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.6, 0.2, 300)
    new = base - 0.03 + rng.normal(0, 0.05, 300)
    ours = paired_bootstrap(base, new, resamples=5000, seed=1)
    ref = stats.bootstrap(
        (new - base,), np.mean, n_resamples=5000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.delta == pytest.approx(np.mean(new - base))
    assert ours.lower == pytest.approx(ref.low, abs=0.003)
    assert ours.upper == pytest.approx(ref.high, abs=0.003)
    assert ours.p_value < 0.001
    assert paired_bootstrap(base, new, seed=1) == paired_bootstrap(base, new, seed=1)


def test_paired_bootstrap_of_an_aggregate_statistic() -> None:
    base = np.arange(50, dtype=float)
    test = paired_bootstrap(base, base + 1, statistic=lambda x: float(np.median(x)), seed=0)
    assert test.delta == 1.0 and test.lower == test.upper == 1.0


def test_wilcoxon_p_value_is_scipys() -> None:
    rng = np.random.default_rng(5)
    base = rng.random(80)
    new = base + rng.normal(0.05, 0.1, 80)
    assert wilcoxon(base, new).p_value == pytest.approx(stats.wilcoxon(new, base).pvalue)
    assert wilcoxon(base, base).p_value == 1.0


def test_holm_by_hand() -> None:
    # Sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04).
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_cases_needed_agrees_with_simulated_power() -> None:
    needed = cases_needed_binary(discordance=0.2, effect=0.05)
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(400):
        cells = rng.multinomial(needed, [0.125, 0.075, 0.8])  # discordance 0.2, effect 0.05
        hits += stats.binomtest(int(cells[1]), int(cells[0] + cells[1]), 0.5).pvalue < 0.05
    assert 0.72 <= hits / 400 <= 0.88


PASS_FAIL = [
    pytest.param(binary_runs(500, 5, 4, 390), Policy(), "pass", id="unchanged"),
    pytest.param(binary_runs(500, 40, 5, 360), Policy(), "regressed", id="significant-drop"),
    pytest.param(
        binary_runs(500, 40, 5, 360), Policy(max_drop=0.1), "pass", id="drop-within-max-drop"
    ),
    pytest.param(binary_runs(500, 5, 40, 360), Policy(), "improved", id="significant-gain"),
    pytest.param(binary_runs(40, 3, 1, 30), Policy(), "inconclusive", id="too-few-cases"),
    pytest.param(binary_runs(500, 5, 4, 390), Policy(minimum=0.9), "regressed", id="floor"),
    pytest.param(
        binary_runs(500, 40, 5, 360), Policy(direction="lower"), "improved", id="lower-is-better"
    ),
]


@pytest.mark.parametrize(("runs", "policy", "outcome"), PASS_FAIL)
def test_outcomes(runs: tuple[list[float], list[float]], policy: Policy, outcome: str) -> None:
    base, new = runs
    ids = [f"c{i}" for i in range(len(base))]
    comparison = Comparison(
        "accuracy", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    (verdict,) = judge([comparison], {"accuracy": policy})
    assert verdict.outcome == outcome, verdict.reason
    if outcome == "inconclusive":
        assert verdict.cases_needed is not None and verdict.cases_needed > len(base)


def test_holm_covers_every_metric_and_slice_and_unpaired_cases_are_counted() -> None:
    base, new = binary_runs(500, 20, 8, 380)  # one-sided p ~ 0.018 alone, ~0.054 times 3
    ids = [f"c{i}" for i in range(500)]
    one = Comparison(
        "accuracy", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    alone = judge([one], {})[0]
    with_slices = judge(
        [one, *(Comparison("accuracy", "binary", one.baseline, one.new, slice=s) for s in "ab")], {}
    )
    assert alone.outcome == "regressed"
    assert with_slices[0].p_adjusted == pytest.approx(min(1.0, 3 * alone.test.p_less))
    assert with_slices[0].outcome != "regressed"
    partial = Comparison(
        "accuracy", "binary", one.baseline, {k: v for k, v in one.new.items() if k != "c0"}
    )
    assert judge([partial], {})[0].unpaired == 1
    assert overall(with_slices) in ("pass", "inconclusive")
