"""Window performance and its judgement, checked against scikit-learn and scipy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from monitor.performance import Performance, judge_target
from monitor.performance import judge as judge
from monitor.performance import measure as measure_all


# The bootstrap's resamples set only the intervals' precision, not the values checked.
def measure(*args: Any, **kwargs: Any) -> Performance:
    return measure_all(*args, resamples=100, **kwargs)


CLASSIFICATION = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    {"name": "f1", "average": "micro"},
    {"name": "roc-auc", "positive": "1"},
    {"name": "log-loss", "positive": "1"},
]


def classified(n: int, accuracy: float, seed: int) -> tuple[list[str], list[str], list[float]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < accuracy
    predicted = np.where(right, truth, 1 - truth)
    proba = np.clip(0.5 + (truth - 0.5) * 0.6 + rng.normal(0, 0.25, n), 0.01, 0.99)
    return [str(p) for p in predicted], [str(t) for t in truth], proba.tolist()


def test_classification_metrics_agree_with_scikit_learn_on_the_labelled_records() -> None:
    predictions, labels, scores = classified(800, 0.85, seed=1)
    missing = set(range(0, 800, 7))  # not labelled yet
    given = [None if i in missing else y for i, y in enumerate(labels)]
    result = measure("classification", predictions, given, scores, metrics=CLASSIFICATION)
    keep = [i for i in range(800) if i not in missing]
    y = np.array([int(labels[i]) for i in keep])
    p = np.array([int(predictions[i]) for i in keep])
    s = np.array([scores[i] for i in keep])
    expected = {
        "accuracy": skm.accuracy_score(y, p),
        "precision": skm.precision_score(y, p, average="macro"),
        "recall": skm.recall_score(y, p, average="macro"),
        "f1": skm.f1_score(y, p, average="macro"),
        "f1[average=micro]": skm.f1_score(y, p, average="micro"),
        "roc-auc": skm.roc_auc_score(y, s),
        "log-loss": skm.log_loss(y, s),
    }
    assert (result.status, result.n_rows, result.n_labelled) == ("ok", 800, len(keep))
    assert result.labelled_share == pytest.approx(len(keep) / 800)
    got = {m.metric: m.value for m in result.metrics}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    for m in result.metrics:
        assert m.lower is not None and m.upper is not None
        assert m.lower <= m.value <= m.upper, m.metric


def test_regression_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 2, 600)
    p = y + rng.normal(0, 1, 600)
    result = measure("regression", p.tolist(), y.tolist(), metrics=["mae", "rmse", "r2", "mape"])
    expected = {
        "mae": skm.mean_absolute_error(y, p),
        "rmse": math.sqrt(skm.mean_squared_error(y, p)),
        "r2": skm.r2_score(y, p),
        "mape": skm.mean_absolute_percentage_error(y, p),
    }
    for name, value in expected.items():
        metric = result.metric(name)
        assert metric is not None and metric.value == pytest.approx(value, abs=1e-9), name
    # The per-record errors a two-sample test compares average to the metrics.
    assert result.per_record["mae"].mean() == pytest.approx(expected["mae"], abs=1e-9)
    assert math.sqrt(result.per_record["rmse"].mean()) == pytest.approx(expected["rmse"])
    assert result.per_record["mape"].mean() == pytest.approx(expected["mape"], abs=1e-9)


def test_too_few_labels_compute_no_metric_but_count_the_labelled_share() -> None:
    predictions, labels, _ = classified(100, 0.9, seed=3)
    given = [y if i < 20 else None for i, y in enumerate(labels)]
    result = measure("classification", predictions, given, metrics=["accuracy"], min_labels=30)
    assert (result.status, result.n_labelled, result.metrics) == ("insufficient_labels", 20, ())
    assert result.labelled_share == pytest.approx(0.2)


def test_a_large_window_bootstraps_a_subsample_and_scales_the_width() -> None:
    """Above interval_rows the interval comes from a subsample, scaled by sqrt(m/n): about
    as wide as the full bootstrap, around the value computed on every record."""
    predictions, labels, _ = classified(6000, 0.8, seed=4)
    full = measure("classification", predictions, labels, metrics=["f1"], interval_rows=6000)
    cut = measure("classification", predictions, labels, metrics=["f1"], interval_rows=1500)
    (a,), (b,) = full.metrics, cut.metrics
    assert a.value == b.value
    assert a.lower is not None and a.upper is not None and b.lower is not None
    assert b.upper is not None and b.lower < b.value < b.upper
    assert (b.upper - b.lower) == pytest.approx(a.upper - a.lower, rel=0.3)


def test_a_degraded_window_is_judged_worse_by_fishers_exact_test() -> None:
    reference = measure("classification", *classified(2000, 0.9, seed=5)[:2], metrics=["accuracy"])
    same = measure("classification", *classified(300, 0.9, seed=6)[:2], metrics=["accuracy"])
    worse = measure("classification", *classified(300, 0.75, seed=7)[:2], metrics=["accuracy"])
    (calm,) = judge(same, reference, alpha=0.05)
    (drop,) = judge(worse, reference, alpha=0.05)
    assert not calm.worse and drop.worse and drop.test == "fisher-exact"
    w, r = worse.per_record["accuracy"], reference.per_record["accuracy"]
    table = [[w.sum(), len(w) - w.sum()], [r.sum(), len(r) - r.sum()]]
    assert drop.p_value == pytest.approx(stats.fisher_exact(table, alternative="less").pvalue)
    assert drop.delta == pytest.approx(w.mean() - r.mean())


def test_error_metrics_are_judged_by_welch_on_per_record_errors_holm_adjusted() -> None:
    rng = np.random.default_rng(8)
    y_ref, y_cur = rng.normal(0, 1, 1000), rng.normal(0, 1, 400)
    p_ref, p_cur = y_ref + rng.normal(0, 0.5, 1000), y_cur + rng.normal(0, 0.7, 400)
    names = ["mae", "rmse", "r2"]
    reference = measure("regression", p_ref.tolist(), y_ref.tolist(), metrics=names)
    window = measure("regression", p_cur.tolist(), y_cur.tolist(), metrics=names)
    judged = {j.metric: j for j in judge(window, reference, alpha=0.05)}
    raw = {
        "mae": stats.ttest_ind(
            np.abs(y_cur - p_cur), np.abs(y_ref - p_ref), equal_var=False, alternative="greater"
        ).pvalue,
        "rmse": stats.ttest_ind(
            (y_cur - p_cur) ** 2, (y_ref - p_ref) ** 2, equal_var=False, alternative="greater"
        ).pvalue,
    }
    low, high = sorted(raw.values())
    holm = {k: (min(1.0, 2 * v) if v == low else max(min(1.0, 2 * low), v)) for k, v in raw.items()}
    for name in ("mae", "rmse"):
        assert judged[name].test == "welch-t" and judged[name].worse
        assert judged[name].p_value == pytest.approx(holm[name], rel=1e-9)
    # R2 has no per-record score: reported, not tested.
    assert judged["r2"].test is None and judged["r2"].p_value is None and not judged["r2"].worse
    assert high <= 1


def test_a_target_is_judged_by_one_sample_tests_or_the_interval() -> None:
    predictions, labels, _ = classified(400, 0.8, seed=9)
    window = measure("classification", predictions, labels, metrics=["accuracy", "f1"])
    judged = {j.metric: j for j in judge_target(window, {"accuracy": 0.9, "f1": 0.5}, alpha=0.05)}
    correct = int(window.per_record["accuracy"].sum())
    p = stats.binomtest(correct, 400, 0.9, alternative="less").pvalue
    assert judged["accuracy"].test == "binomial" and judged["accuracy"].worse
    assert judged["accuracy"].p_value == pytest.approx(p, rel=1e-9)
    assert judged["f1"].test == "interval" and not judged["f1"].worse  # well above 0.5
