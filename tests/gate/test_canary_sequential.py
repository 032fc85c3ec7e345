"""The canary's mixture SPRT: its closed form against a numerical integration of the mixture
(scipy), its confidence sequence against its p-value, and its error rates in a seeded
simulation of a canary that looks at every poll."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from monitor.gate.sequential import (
    MIN_LABELLED,
    SequentialTest,
    confidence_halfwidth,
    difference,
    mixture_likelihood_ratio,
)


def integrated_ratio(delta: float, variance: float, tau: float, theta0: float = 0.0) -> float:
    """The mixture likelihood ratio by definition: the likelihood of the observed difference
    under ``theta ~ N(theta0, tau**2)``, over its likelihood under ``theta0``."""
    sd = math.sqrt(variance)

    def integrand(theta: float) -> float:
        return float(stats.norm.pdf(delta, theta, sd) * stats.norm.pdf(theta, theta0, tau))

    mixed, _ = integrate.quad(integrand, theta0 - 12 * tau, theta0 + 12 * tau, points=[delta])
    return mixed / float(stats.norm.pdf(delta, theta0, sd))


@pytest.mark.parametrize(
    ("delta", "variance", "tau", "theta0"),
    [
        (0.0, 1e-3, 0.05, 0.0),
        (-0.05, 4e-4, 0.05, 0.0),
        (0.03, 2e-4, 0.1, 0.0),
        (-0.02, 1e-4, 0.02, -0.01),
    ],
    ids=["no-difference", "worse", "better-wide-mixture", "shifted-null"],
)
def test_the_closed_form_is_the_mixture_integrated(
    delta: float, variance: float, tau: float, theta0: float
) -> None:
    closed = float(mixture_likelihood_ratio(delta, variance, tau, theta0))
    assert closed == pytest.approx(integrated_ratio(delta, variance, tau, theta0), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_the_interval_ends_where_the_ratio_reaches_one_over_alpha(alpha: float) -> None:
    delta, variance, tau = -0.03, 3e-4, 0.05
    half = float(confidence_halfwidth(variance, tau, alpha))
    for end in (delta - half, delta + half):
        # theta0 at an end of the interval: the ratio of H0 "difference = theta0" is 1/alpha.
        assert integrated_ratio(delta, variance, tau, theta0=end) == pytest.approx(1 / alpha)


def test_the_difference_and_its_variance() -> None:
    delta, variance = difference(80, 100, 150, 200)
    assert float(delta) == pytest.approx(0.75 - 0.8)
    pp, pc = 80.5 / 101, 150.5 / 201
    assert float(variance) == pytest.approx(pp * (1 - pp) / 100 + pc * (1 - pc) / 200)
    # A model right on every record still has a variance: the ratio stays finite.
    assert float(difference(50, 50, 50, 50)[1]) > 0


def test_the_p_value_and_the_interval_agree_and_only_tighten() -> None:
    test = SequentialTest(alpha=0.05, tau=0.05)
    rng = np.random.default_rng(3)
    right_p = right_c = n = 0
    previous = (1.0, -math.inf, math.inf)
    for _ in range(40):
        n += 50
        right_p += int(rng.binomial(50, 0.9))
        right_c += int(rng.binomial(50, 0.85))
        e = test.look(right_p, n, right_c, n)
        assert e.p_value <= previous[0] and e.lower >= previous[1] and e.upper <= previous[2]
        previous = (e.p_value, e.lower, e.upper)
        # p <= alpha exactly when 0 has left the interval (running intersection).
        assert (e.p_value <= 0.05) == (e.upper < 0 or e.lower > 0)
    assert test.decision == "rollback"


def test_no_decision_before_each_model_has_enough_labels() -> None:
    test = SequentialTest(alpha=0.05, tau=0.05)
    e = test.look(MIN_LABELLED - 1, MIN_LABELLED - 1, 0, 1000)  # one right, one all wrong
    assert e.p_value == 1.0 and math.isinf(e.lower) and test.decision is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"alpha must be between 0 and 1, got: 1\.5"):
        SequentialTest(alpha=1.5, tau=0.05)
    with pytest.raises(ValueError, match="tau must be positive"):
        SequentialTest(alpha=0.05, tau=0)


def canary_runs(
    delta: float, runs: int, *, looks: int = 30, batch: int = 40, margin: float = 0.0
) -> dict[str, float]:
    """How often seeded canaries (production accuracy 0.85, the candidate's ``0.85 +
    delta``, ``batch`` new labelled records of each per look) roll back or promote early."""
    rng = np.random.default_rng(20)
    decisions = {"rollback": 0, "promote": 0}
    for _ in range(runs):
        test = SequentialTest(alpha=0.05, tau=0.05, margin=margin)
        right_p, right_c = np.cumsum(rng.binomial(batch, [[0.85, 0.85 + delta]] * looks), axis=0).T
        for k in range(looks):
            n = batch * (k + 1)
            test.look(int(right_p[k]), n, int(right_c[k]), n)
            if test.decision is not None:
                decisions[test.decision] += 1
                break
    return {key: count / runs for key, count in decisions.items()}


def test_an_equal_candidate_is_rolled_back_at_most_alpha_of_the_time_despite_peeking() -> None:
    runs = 1000
    rates = canary_runs(0.0, runs)
    slack = 2 * math.sqrt(0.05 * 0.95 / runs)
    assert rates["rollback"] <= 0.05 + slack


def test_a_candidate_worse_by_ten_points_is_rolled_back() -> None:
    rates = canary_runs(-0.10, 300)
    assert rates["rollback"] >= 0.9 and rates["promote"] == 0


def test_a_worse_candidate_is_rarely_promoted_early_under_a_margin() -> None:
    runs = 600
    rates = canary_runs(-0.05, runs, margin=0.02)  # worse by more than the margin
    assert rates["promote"] <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
