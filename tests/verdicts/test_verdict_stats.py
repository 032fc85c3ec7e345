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


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1], ids=str)
@pytest.mark.parametrize(("b", "c"), [(31, 7), (3, 3), (0, 12), (9, 2)], ids=str)
def test_mcnemar_one_sided_bounds_are_agresti_min_at_one_minus_alpha(
    b: int, c: int, alpha: float
) -> None:
    test = mcnemar_exact(*binary_runs(300, b, c, 200), alpha=alpha)
    # A one-sided bound at 1 - alpha is an end of the two-sided 1 - 2 alpha interval.
    z = stats.norm.ppf(1 - alpha)
    m, bb, cc = 302.0, b + 0.5, c + 0.5
    se = np.sqrt((bb + cc) - (cc - bb) ** 2 / m) / m
    assert test.lower_bound == pytest.approx(max(-1.0, (cc - bb) / m - z * se))
    assert test.upper_bound == pytest.approx(min(1.0, (cc - bb) / m + z * se))
    assert test.lower_bound <= test.delta <= test.upper_bound
    if alpha >= 0.025:  # inside the two-sided 95% interval
        assert test.lower <= test.lower_bound and test.upper_bound <= test.upper
    assert test.alpha == alpha


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1], ids=str)
def test_mcnemar_p_under_alpha_puts_its_bound_beyond_zero(alpha: float) -> None:
    # Agresti-Min beside the exact test: whenever the exact one-sided p-value is under
    # alpha, the bound of the same direction excludes zero (here for every table with up
    # to 60 discordant pairs, small and large shares of them).
    for degraded in range(61):
        for improved in range(61 - degraded):
            for n in (degraded + improved + 1, 5 * (degraded + improved) + 50):
                test = mcnemar_exact(*binary_runs(n, degraded, improved, 0), alpha=alpha)
                if test.p_less < alpha:
                    assert test.upper_bound < 0, (degraded, improved, n)
                if test.p_greater < alpha:
                    assert test.lower_bound > 0, (degraded, improved, n)


def test_bootstrap_one_sided_bounds_match_scipy() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(0.6, 0.2, 300)
    new = base - 0.03 + rng.normal(0, 0.05, 300)
    ours = paired_bootstrap(base, new, resamples=5000, seed=1)
    for alternative, ours_bound in (("less", ours.upper_bound), ("greater", ours.lower_bound)):
        ref = stats.bootstrap(
            (new - base,), np.mean, n_resamples=5000, method="percentile", random_state=1,
            alternative=alternative,
        ).confidence_interval  # fmt: skip
        bound = ref.high if alternative == "less" else ref.low
        assert ours_bound == pytest.approx(bound, abs=0.003)
    assert ours.lower < ours.lower_bound < ours.delta < ours.upper_bound < ours.upper


@pytest.mark.parametrize("alpha", [0.01, 0.037, 0.05, 0.1], ids=str)
@pytest.mark.parametrize("resamples", [100, 333, 2000], ids=str)
def test_bootstrap_p_under_alpha_exactly_when_its_bound_is_beyond_zero(
    alpha: float, resamples: int
) -> None:
    rng = np.random.default_rng(int(alpha * 1000) + resamples)
    significant = 0
    for seed in range(60):
        base = rng.random(40)
        new = base + rng.normal(-0.02, 0.08, 40)
        test = paired_bootstrap(base, new, alpha=alpha, resamples=resamples, seed=seed)
        assert (test.p_less < alpha) == (test.upper_bound < 0), seed
        assert (test.p_greater < alpha) == (test.lower_bound > 0), seed
        significant += test.p_less < alpha
    if 1 / resamples >= alpha:  # the p-value's floor: too few resamples to tell at alpha
        assert significant == 0
    else:
        assert 0 < significant < 60  # both sides of the line were met


def test_a_regression_comes_with_the_bound_its_test_used() -> None:
    # Significant one-sided (p about 0.04) while the two-sided 95% interval holds zero:
    # the report shows the one-sided 95% bound, which is below zero like the p-value says.
    rng = np.random.default_rng(0)
    base = rng.random(60)
    new = base + rng.normal(-0.03, 0.1, 60)
    ids = [f"c{i}" for i in range(60)]
    comparison = Comparison(
        "f1-score",
        "continuous",
        dict(zip(ids, base, strict=True)),
        dict(zip(ids, new, strict=True)),
    )
    (verdict,) = judge([comparison], {"f1-score": Policy()})
    assert verdict.outcome == "regressed"
    assert verdict.test.lower < 0 < verdict.test.upper
    assert verdict.bound_side == "upper" and verdict.bound == verdict.test.upper_bound < 0
    assert verdict.p_adjusted == verdict.test.p_less < 0.05
    assert verdict.test.alpha == 0.05


@pytest.mark.parametrize(
    ("runs", "policy", "outcome", "side"),
    [
        pytest.param(binary_runs(500, 40, 5, 360), Policy(), "regressed", "upper", id="drop"),
        pytest.param(binary_runs(500, 5, 40, 360), Policy(), "improved", "lower", id="gain"),
        pytest.param(binary_runs(500, 5, 4, 390), Policy(), "pass", "upper", id="unchanged"),
        pytest.param(
            binary_runs(500, 40, 5, 360), Policy(direction="lower"), "improved", "upper",
            id="lower-is-better-falls",
        ),
        pytest.param(
            binary_runs(500, 5, 40, 360), Policy(direction="lower", alpha=0.01), "regressed",
            "lower", id="lower-is-better-rises-alpha-0.01",
        ),
    ],
)  # fmt: skip
def test_the_bound_is_on_the_side_of_the_tested_direction(
    runs: tuple[list[float], list[float]], policy: Policy, outcome: str, side: str
) -> None:
    base, new = runs
    ids = [f"c{i}" for i in range(len(base))]
    comparison = Comparison(
        "accuracy", "binary", dict(zip(ids, base, strict=True)), dict(zip(ids, new, strict=True))
    )
    (verdict,) = judge([comparison], {"accuracy": policy})
    assert (verdict.outcome, verdict.bound_side) == (outcome, side)
    assert verdict.test.alpha == policy.alpha
    if outcome != "pass":  # significant: the bound is beyond zero, in the tested direction
        assert verdict.bound < 0 if side == "upper" else verdict.bound > 0
