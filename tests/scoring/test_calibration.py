"""Judge calibration statistics, cross-checked against independent formulas: Cohen's
kappa from the confusion matrix, Spearman's rho as Pearson's r of the ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.scoring.calibration import calibrate


def kappa_by_hand(judge: np.ndarray, human: np.ndarray, weights: str | None) -> float:
    values = np.union1d(judge, human)
    k = len(values)
    observed = np.zeros((k, k))
    for h, j in zip(human, judge, strict=True):
        observed[np.searchsorted(values, h), np.searchsorted(values, j)] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    i, j = np.indices((k, k))
    w = (i - j) ** 2 / (k - 1) ** 2 if weights == "quadratic" else (i != j).astype(float)
    return float(1 - (w * observed).sum() / (w * expected).sum())


def test_binary_agreement_matches_the_formulas() -> None:
    rng = np.random.default_rng(3)
    human = (rng.random(300) < 0.6).astype(float)
    judge = np.where(rng.random(300) < 0.15, 1 - human, human)
    result = calibrate("rubric", judge.tolist(), human.tolist())
    assert result.n == 300
    assert result.accuracy is not None
    assert result.accuracy.value == pytest.approx(float(np.mean(judge == human)))
    assert result.accuracy.lower < result.accuracy.value < result.accuracy.upper
    assert result.kappa is not None and result.kappa_weights is None
    assert result.kappa.value == pytest.approx(kappa_by_hand(judge, human, None))
    assert result.kappa.lower < result.kappa.value < result.kappa.upper
    assert result.spearman is None
    assert result.labels == (0.0, 1.0)
    (tn, fp), (fn, tp) = result.confusion
    assert result.sensitivity is not None and result.specificity is not None
    assert result.sensitivity.value == pytest.approx(tp / (tp + fn))
    assert result.specificity.value == pytest.approx(tn / (tn + fp))
    assert tp == int(np.sum((human == 1) & (judge == 1)))
    assert fp == int(np.sum((human == 0) & (judge == 1)))
    assert tn + fp + fn + tp == 300


def test_a_1_to_5_scale_gets_weighted_kappa_and_spearman() -> None:
    rng = np.random.default_rng(4)
    human = rng.integers(1, 6, 200).astype(float)
    judge = np.clip(human + rng.choice([-1, 0, 0, 0, 1], 200), 1, 5)
    result = calibrate("rubric", judge.tolist(), human.tolist(), seed=2)
    assert result.kappa is not None and result.kappa_weights == "quadratic"
    assert result.kappa.value == pytest.approx(kappa_by_hand(judge, human, "quadratic"))
    ranks = np.corrcoef(stats.rankdata(judge), stats.rankdata(human))[0, 1]
    assert result.spearman is not None
    assert result.spearman.value == pytest.approx(ranks)
    assert result.spearman.lower < result.spearman.value < result.spearman.upper
    assert len(result.confusion) == 5


def test_a_continuous_score_gets_spearman_only() -> None:
    rng = np.random.default_rng(5)
    human = rng.random(100)
    judge = human + rng.normal(0, 0.1, 100)
    result = calibrate("faithfulness", judge.tolist(), human.tolist())
    assert result.accuracy is None and result.kappa is None and not result.confusion
    assert result.spearman is not None
    assert result.spearman.value == pytest.approx(stats.spearmanr(judge, human).statistic)
    assert result.mean_abs_difference == pytest.approx(float(np.mean(np.abs(judge - human))))


def test_constant_labels_leave_kappa_undefined_not_made_up() -> None:
    result = calibrate("rubric", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert result.accuracy is not None and result.accuracy.value == 1.0
    assert result.kappa is None
