"""A binary judge metric given its judge's sensitivity and specificity is judged on the
Rogan-Gladen corrected scale: values, delta, interval, tolerance, floor and cases needed
are the true share's, while the p-values and changed-case counts are those of the test on
the judged scores (cross-checked with scipy and against the same suite without rates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from monitor.config import SuiteConfig
from monitor.records import JUDGE_CORRECTED, CaseResult, MetricComparison
from monitor.verdicts import cases_needed_binary, paired_bootstrap
from monitor.verdicts.compare import compare_cases

SE, SP = 0.9, 0.8
J = SE + SP - 1


def suite(tmp_path: Path, *, rates: bool, policy: dict[str, Any] | None = None) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "1", "input": "q", "expected": "a"}\n')
    metric: dict[str, Any] = {"name": "rubric", "judge": "j", "criterion": "c"}
    if rates:
        metric |= {"sensitivity": SE, "specificity": SP}
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "text",
            "metrics": [metric],
            "models": ["m"],
            "verdict": {"metrics": {"rubric": policy or {}}},
        }
    )


def cases(scores: np.ndarray) -> list[CaseResult]:
    return [
        CaseResult(f"c{i:03d}", "q", "a", prediction="p", scores={"rubric": float(s)})
        for i, s in enumerate(scores)
    ]


def rows(
    tmp_path: Path, base: np.ndarray, new: np.ndarray, policy: dict[str, Any] | None = None
) -> tuple[MetricComparison, MetricComparison]:
    """The rubric's verdict row without the judge's rates, then with them."""
    raw, corrected = (
        compare_cases(suite(tmp_path, rates=r, policy=policy), cases(base), cases(new)).metrics[0]
        for r in (False, True)
    )
    return raw, corrected


def rogan_gladen(x: float) -> float:
    return (x + SP - 1) / J


def flipped(base: np.ndarray, degraded: int, improved: int) -> np.ndarray:
    new = base.copy()
    new[np.flatnonzero(base == 1)[:degraded]] = 0
    new[np.flatnonzero(base == 0)[:improved]] = 1
    return new


def test_a_drop_within_the_tolerance_when_judged_is_beyond_it_when_corrected(
    tmp_path: Path,
) -> None:
    # Judged: 0.80 -> 0.73, a 7-point drop; corrected: 10 points (J = 0.7).
    base = np.array([1] * 320 + [0] * 80, dtype=float)
    new = flipped(base, 32, 4)
    raw, fixed = rows(tmp_path, base, new, {"max_drop": 0.08})
    assert raw.delta == pytest.approx(-0.07) and raw.outcome != "regressed"
    assert fixed.outcome == "regressed"
    assert fixed.delta == pytest.approx(-0.07 / J) == pytest.approx(-0.1)
    assert fixed.baseline == pytest.approx(rogan_gladen(0.8))
    assert fixed.new == pytest.approx(rogan_gladen(0.73))
    assert fixed.new - fixed.baseline == pytest.approx(fixed.delta)
    # The same exact McNemar test: the p-values and counts do not move.
    assert fixed.method == raw.method == "mcnemar-exact"
    assert fixed.p_value == raw.p_value == pytest.approx(stats.binomtest(4, 36, 0.5).pvalue)
    assert fixed.p_adjusted == raw.p_adjusted
    assert (fixed.degraded, fixed.improved) == (raw.degraded, raw.improved) == (32, 4)
    # Interval and bound divided by J, the tolerance on the true scale.
    assert (fixed.lower, fixed.upper) == pytest.approx((raw.lower / J, raw.upper / J))
    assert raw.bound is not None and fixed.bound == pytest.approx(raw.bound / J)
    assert fixed.margin == raw.margin == 0.08
    assert JUDGE_CORRECTED in fixed.reason and "sensitivity 0.9" in fixed.reason
    assert JUDGE_CORRECTED not in raw.reason
    assert "dropped 0.1" in fixed.reason


def test_the_floor_is_compared_with_the_corrected_share(tmp_path: Path) -> None:
    # Judged 0.60 (above a 0.5 floor); corrected (0.6 - 0.2) / 0.7 = 0.571, and a floor of
    # 0.58 holds for the judged share but not for the true one.
    base = np.array([1] * 60 + [0] * 40, dtype=float)
    raw, fixed = rows(tmp_path, base, base.copy(), {"min": 0.58})
    assert raw.outcome == "pass"
    assert fixed.outcome == "regressed" and "floor 0.58" in fixed.reason
    assert fixed.new == pytest.approx(0.4 / 0.7)


def test_cases_needed_are_for_the_smallest_true_drop_that_matters(tmp_path: Path) -> None:
    base = np.array([1] * 40 + [0] * 20, dtype=float)
    new = flipped(base, 6, 4)
    raw, fixed = rows(tmp_path, base, new)
    assert raw.outcome == fixed.outcome == "inconclusive"
    discordance = 10 / 60
    assert raw.cases_needed == cases_needed_binary(discordance, 0.05)
    # 5 true points are 3.5 judged points: more cases to tell them apart.
    assert fixed.cases_needed == cases_needed_binary(discordance, 0.05 * J)
    assert fixed.cases_needed is not None and raw.cases_needed is not None
    assert fixed.cases_needed > raw.cases_needed
    assert fixed.p_value == raw.p_value


def test_repeated_judgements_averaged_are_bootstrapped_on_the_corrected_scale(
    tmp_path: Path,
) -> None:
    # ``judge_repeats = 3`` with the mean: thirds, so a paired bootstrap of the mean.
    rng = np.random.default_rng(3)
    base = rng.integers(0, 4, 300) / 3
    new = np.clip(base - (rng.random(300) < 0.2) / 3, 0, 1)
    raw, fixed = rows(tmp_path, base, new)
    assert fixed.method == raw.method == "paired-bootstrap"
    assert fixed.p_value == raw.p_value and fixed.p_adjusted == raw.p_adjusted
    assert fixed.delta == pytest.approx(raw.delta / J)
    assert (fixed.lower, fixed.upper) == pytest.approx((raw.lower / J, raw.upper / J))
    assert fixed.baseline == pytest.approx(rogan_gladen(float(base.mean())))
    # Mapping each case's score first and bootstrapping those gives the same numbers.
    settings = suite(tmp_path, rates=True).verdict
    mapped = paired_bootstrap(
        (base + SP - 1) / J, (new + SP - 1) / J, seed=settings.seed, resamples=settings.resamples
    )
    assert (fixed.lower, fixed.upper, fixed.p_value) == pytest.approx(
        (mapped.lower, mapped.upper, mapped.p_value)
    )
    assert fixed.new == pytest.approx(mapped.new)


def test_an_unchanged_model_keeps_the_uncorrected_tests_level(tmp_path: Path) -> None:
    """Two runs of the same model through the same noisy judge: the corrected verdict
    regresses exactly when the uncorrected test would with a zero tolerance, since the
    p-values are the same."""
    rng = np.random.default_rng(11)
    regressed = 0
    for _ in range(40):
        good = rng.random(200) < 0.8
        judged = [
            np.where(rng.random(200) < np.where(good, SE, 1 - SP), 1.0, 0.0) for _ in range(2)
        ]
        raw, fixed = rows(tmp_path, *judged)
        assert fixed.p_value == raw.p_value
        assert (fixed.outcome == "regressed") is (raw.outcome == "regressed")
        regressed += fixed.outcome == "regressed"
    assert regressed <= 6  # alpha = 0.05 of 40 runs, with room for chance
