"""The intervals of suites' slice gaps: seeded, case-order free, covering the point gap,
and the point gap cross-checked against fairlearn's MetricFrame."""

from __future__ import annotations

import random

import pytest

from monitor.records import SliceGap
from monitor.scoring import build_metric
from monitor.scoring.evaluation import Attempt, Evaluation


def _cases(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(case id, expected, prediction, region): region ``north`` answered right about
    90% of the time, ``south`` about 60%."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        region = "north" if i % 2 else "south"
        expected = rng.choice("ab")
        right = rng.random() < (0.9 if region == "north" else 0.6)
        predicted = expected if right else ("b" if expected == "a" else "a")
        rows.append((f"case-{i:04d}", expected, predicted, region))
    return rows


def _evaluate(rows: list[tuple[str, str, str, str]], *, seed: int = 7) -> dict[str, SliceGap]:
    evaluation = Evaluation(
        [build_metric("accuracy"), build_metric({"name": "f1", "average": "macro"})],
        slices=["region"],
        seed=seed,
    )
    for case_id, expected, predicted, region in rows:
        evaluation.add(case_id, expected, [Attempt(predicted)], {"region": region})
    return {g.metric: g for g in evaluation.results().gaps}


def test_a_real_gap_has_an_interval_above_zero_that_covers_it() -> None:
    gaps = _evaluate(_cases(400, seed=1))
    for metric in ("accuracy", "f1"):  # per-case and corpus metric
        gap = gaps[metric]
        assert (gap.best, gap.worst) == ("north", "south")
        assert gap.lower is not None and gap.upper is not None
        assert 0 < gap.lower <= gap.gap <= gap.upper


def test_no_real_gap_gives_an_interval_reaching_zero() -> None:
    rng = random.Random(3)
    rows = [
        (f"c{i:03d}", "a", "a" if rng.random() < 0.8 else "b", "x" if i % 2 else "y")
        for i in range(200)
    ]
    gap = _evaluate(rows)["accuracy"]
    assert gap.lower is not None and gap.lower <= 0 <= gap.gap <= gap.upper  # type: ignore[operator]


def test_intervals_are_the_same_across_evaluations_and_case_order() -> None:
    rows = _cases(300, seed=2)
    first = _evaluate(rows)
    shuffled = rows[:]
    random.Random(9).shuffle(shuffled)
    assert _evaluate(rows) == first
    assert _evaluate(shuffled) == first
    other = _evaluate(rows, seed=8)["accuracy"]
    assert other.gap == first["accuracy"].gap and other.lower != first["accuracy"].lower


def test_a_slice_of_one_case_has_no_interval() -> None:
    rows = [("c0", "a", "a", "x"), ("c1", "a", "b", "y"), ("c2", "a", "a", "y")]
    gap = _evaluate(rows)["accuracy"]
    assert gap.gap == pytest.approx(0.5) and (gap.lower, gap.upper) == (None, None)


def test_point_gap_matches_fairlearn_metric_frame_difference() -> None:
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score, f1_score

    rows = _cases(250, seed=5)
    gaps = _evaluate(rows)
    frame = MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "f1": lambda y, p: f1_score(y, p, average="macro"),
        },
        y_true=[r[1] for r in rows],
        y_pred=[r[2] for r in rows],
        sensitive_features=[r[3] for r in rows],
    )
    difference = frame.difference(method="between_groups")
    assert gaps["accuracy"].gap == pytest.approx(difference["accuracy"], abs=1e-9)
    assert gaps["f1"].gap == pytest.approx(difference["f1"], abs=1e-9)


def test_tied_slices_name_two_values_and_an_interval_around_zero() -> None:
    rows = [(f"c{i:02d}", "a", "a" if i % 4 else "b", "xyz"[i % 3]) for i in range(36)]
    gap = _evaluate(rows)["accuracy"]
    assert (gap.gap, gap.best, gap.worst) == (0.0, "x", "y")
    assert gap.lower is not None and gap.lower < 0 < gap.upper  # type: ignore[operator]


def test_resampling_as_counts_matches_resampling_cases() -> None:
    """Few distinct scores are resampled as a multinomial draw of their counts: the same
    distribution as drawing cases, which many distinct scores still do."""
    import numpy as np

    from monitor.scoring.evaluation import _resampled_means

    rng = np.random.default_rng(0)
    few = (rng.random(2000) < 0.7).astype(float)
    many = few + rng.random(2000) * 1e-9  # > 64 distinct scores: cases are drawn
    as_counts = _resampled_means(few, np.random.default_rng(1))
    as_cases = _resampled_means(many, np.random.default_rng(1))
    assert len(as_counts) == len(as_cases) == 1000
    for q in (2.5, 50, 97.5):
        assert np.percentile(as_counts, q) == pytest.approx(np.percentile(as_cases, q), abs=4e-3)
    assert np.std(as_counts) == pytest.approx(np.sqrt(0.7 * 0.3 / 2000), rel=0.1)


def test_an_error_metrics_best_slice_is_the_one_with_the_lower_error() -> None:
    """MAE (per case) and RMSE (over the slice): lower is better, so the best slice is the
    one with the smaller error and the gap, best minus worst in that direction, is
    positive, as scikit-learn's errors of the two slices say."""
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    rng = random.Random(4)
    rows = []
    for i in range(300):
        region = "north" if i % 2 else "south"
        expected = rng.uniform(0, 10)
        error = rng.gauss(0, 0.2 if region == "north" else 1.5)
        rows.append((f"c{i:03d}", expected, expected + error, region))
    evaluation = Evaluation([build_metric("mae"), build_metric("rmse")], slices=["region"], seed=7)
    for case_id, expected, predicted, region in rows:
        evaluation.add(case_id, expected, [Attempt(predicted)], {"region": region})
    gaps = {g.metric: g for g in evaluation.results().gaps}
    for metric, error in (("mae", mean_absolute_error), ("rmse", root_mean_squared_error)):
        gap = gaps[metric]
        assert (gap.best, gap.worst) == ("north", "south")
        sides = {
            region: error(
                [r[1] for r in rows if r[3] == region], [r[2] for r in rows if r[3] == region]
            )
            for region in ("north", "south")
        }
        assert gap.gap == pytest.approx(sides["south"] - sides["north"], abs=1e-9)
        assert gap.lower is not None and gap.upper is not None
        assert 0 < gap.lower <= gap.gap <= gap.upper
