"""Segments and group fairness, checked against scikit-learn and fairlearn."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn import metrics as fm
from sklearn import metrics as skm

from monitor.performance.groups import (
    OTHER,
    bounded_segments,
    fairness,
    from_counts,
    segment_gaps,
    segments,
)


def biased(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """Predictions that are right 90% of the time in group a, 65% in b and c."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < np.where(group == "a", 0.9, 0.65)
    predicted = np.where(right, truth, 1 - truth)
    return [str(p) for p in predicted], [str(t) for t in truth], list(group)


def test_fairness_measures_are_fairlearns_to_1e_9() -> None:
    predictions, labels, groups = biased(1500, seed=1)
    labels[3] = None  # type: ignore[call-overload]
    measured = {
        m.measure: m for m in fairness(predictions, labels, groups, positive="1", resamples=200)
    }
    keep = [i for i in range(1500) if i != 3]
    y = np.array([int(labels[i]) for i in keep])  # type: ignore[arg-type]
    p = np.array([int(predictions[i]) for i in keep])
    g = [groups[i] for i in keep]
    expected = {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y, p, sensitive_features=g
        ),
        "demographic_parity_ratio": fm.demographic_parity_ratio(y, p, sensitive_features=g),
        "equalized_odds_difference": fm.equalized_odds_difference(y, p, sensitive_features=g),
    }
    for name, value in expected.items():
        m = measured[name]
        assert m.value == pytest.approx(value, abs=1e-9), name
        assert m.lower is not None and m.upper is not None and m.lower <= m.value <= m.upper


@pytest.mark.parametrize(
    "name",
    ["demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"],
)
def test_the_bootstraps_count_version_equals_fairlearn_on_resamples(name: str) -> None:
    predictions, labels, groups = biased(600, seed=2)
    y = np.array([int(v) for v in labels])
    p = np.array([int(v) for v in predictions])
    code = {"a": 0, "b": 1, "c": 2}
    g = np.array([code[v] for v in groups])
    rng = np.random.default_rng(3)
    function = getattr(fm, name)
    for _ in range(5):
        idx = rng.integers(0, 600, 600)
        expected = function(y[idx], p[idx], sensitive_features=[groups[i] for i in idx])
        assert from_counts(name, y[idx], p[idx], g[idx], 3) == pytest.approx(expected, abs=1e-9)


def test_segments_are_bounded_with_the_rest_as_other() -> None:
    values = ["x"] * 5 + ["y"] * 4 + ["z"] * 2 + ["w"] * 2 + [None]
    assert bounded_segments(values, 2) == ["x"] * 5 + ["y"] * 4 + [OTHER] * 5
    # Ties are cut by the value, the same on every run.
    assert bounded_segments(["b", "a", "c"], 2) == ["b", "a", OTHER]


def test_per_segment_metrics_and_the_largest_gap_agree_with_scikit_learn() -> None:
    predictions, labels, groups = biased(1200, seed=4)
    per_segment = segments(
        "classification",
        predictions,
        labels,
        None,
        groups,
        max_segments=2,
        metrics=["accuracy", "f1"],
        min_labels=30,
        resamples=50,
    )
    assert sorted(per_segment) == [OTHER, "a", "b"]
    accuracy = {}
    for key, performance in per_segment.items():
        rows = [i for i, v in enumerate(groups) if (v if v in ("a", "b") else OTHER) == key]
        y = [labels[i] for i in rows]
        p = [predictions[i] for i in rows]
        metric = performance.metric("accuracy")
        assert metric is not None
        assert metric.value == pytest.approx(skm.accuracy_score(y, p), abs=1e-9)
        accuracy[key] = metric.value
    gaps = {g.metric: g for g in segment_gaps("region", per_segment)}
    top = max(accuracy, key=accuracy.__getitem__)
    low = min(accuracy, key=accuracy.__getitem__)
    assert (gaps["accuracy"].best, gaps["accuracy"].worst) == (top, low) == ("a", low)
    assert gaps["accuracy"].gap == pytest.approx(accuracy[top] - accuracy[low])
