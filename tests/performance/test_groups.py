"""Segments and group fairness, checked against scikit-learn and fairlearn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as fm
from fairlearn.metrics import MetricFrame
from sklearn import metrics as skm

from monitor.performance.groups import (
    OTHER,
    SegmentGap,
    bounded_segments,
    fairness,
    from_counts,
    gap_intervals,
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


def gaps_with_intervals(
    predictions: list[str],
    labels: list[str],
    groups: list[str],
    *,
    seed: int = 0,
    interval_rows: int = 20_000,
) -> dict[str, SegmentGap]:
    """The largest gap per metric over ``groups``, with its interval (300 resamples)."""
    settings: dict[str, Any] = {
        "max_segments": 10,
        "metrics": ["accuracy", "f1"],
        "min_labels": 30,
        "resamples": 300,
        "seed": seed,
        "interval_rows": interval_rows,
    }
    per_segment = segments("classification", predictions, labels, None, groups, **settings)
    found = segment_gaps("region", per_segment)
    gaps = gap_intervals(found, predictions, labels, None, groups, **settings)
    return {g.metric: g for g in gaps}


def test_the_largest_gap_is_fairlearns_metricframe_difference_with_an_interval() -> None:
    predictions, labels, groups = biased(1500, seed=5)
    gaps = gaps_with_intervals(predictions, labels, groups)
    frame = MetricFrame(
        metrics={
            "accuracy": skm.accuracy_score,
            "f1": lambda y, p: skm.f1_score(y, p, average="macro"),
        },
        y_true=labels,
        y_pred=predictions,
        sensitive_features=groups,
    )
    difference = frame.difference(method="between_groups")
    for name in ("accuracy", "f1"):
        gap = gaps[name]
        assert gap.gap == pytest.approx(difference[name], abs=1e-9), name
        assert gap.best == frame.by_group[name].idxmax()
        assert gap.worst == frame.by_group[name].idxmin()
        # The interval covers the point gap, and a 25-point accuracy gap is no noise.
        assert gap.lower is not None and gap.upper is not None
        assert gap.lower <= gap.gap <= gap.upper
    assert gaps["accuracy"].lower is not None and gaps["accuracy"].lower > 0
    # Seeded: the same records give the same interval; another seed another one.
    again = gaps_with_intervals(predictions, labels, groups)
    assert again == gaps
    other = gaps_with_intervals(predictions, labels, groups, seed=1)
    assert (other["accuracy"].lower, other["accuracy"].upper) != (
        gaps["accuracy"].lower,
        gaps["accuracy"].upper,
    )
    assert other["accuracy"].gap == gaps["accuracy"].gap


def test_an_error_metrics_gap_is_worst_minus_best_with_its_interval() -> None:
    rng = np.random.default_rng(6)
    groups = list(rng.choice(["a", "b"], 600))
    truth = rng.normal(10, 2, 600)
    noise = np.where(np.array(groups) == "a", 0.5, 1.5)
    predicted = truth + rng.normal(0, 1, 600) * noise
    per_segment = segments(
        "regression",
        list(predicted),
        list(truth),
        None,
        groups,
        max_segments=10,
        metrics=["mae"],
        min_labels=30,
        resamples=200,
    )
    (gap,) = gap_intervals(
        segment_gaps("region", per_segment),
        list(predicted),
        list(truth),
        None,
        groups,
        max_segments=10,
        metrics=["mae"],
        resamples=200,
    )
    a = [i for i, g in enumerate(groups) if g == "a"]
    b = [i for i, g in enumerate(groups) if g == "b"]
    mae_a = skm.mean_absolute_error(truth[a], predicted[a])
    mae_b = skm.mean_absolute_error(truth[b], predicted[b])
    assert (gap.best, gap.worst) == ("a", "b")
    assert gap.gap == pytest.approx(mae_b - mae_a, abs=1e-9)
    assert gap.lower is not None and gap.upper is not None
    assert 0 < gap.lower <= gap.gap <= gap.upper


def test_a_gap_over_more_records_than_interval_rows_is_subsampled_and_still_covers() -> None:
    predictions, labels, groups = biased(3000, seed=7)
    full = gaps_with_intervals(predictions, labels, groups)["accuracy"]
    sampled = gaps_with_intervals(predictions, labels, groups, interval_rows=500)
    gap = sampled["accuracy"]
    assert gap.gap == full.gap  # the value always uses every record
    assert gap.lower is not None and gap.upper is not None
    assert full.lower is not None and full.upper is not None
    assert gap.lower <= gap.gap <= gap.upper
    # Scaled to the whole window: about as wide as the full bootstrap, not the subsample's.
    assert (gap.upper - gap.lower) == pytest.approx(full.upper - full.lower, rel=0.35)
