"""Run-against-baseline comparisons from stored case results: pairing, metric kinds,
slices, operational measures and the per-case diff, checked against scipy on known
inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import f1_score

from monitor.config import parse_config
from monitor.config.suites import SuiteConfig
from monitor.records import CaseResult
from monitor.scoring.operations import Price
from monitor.verdicts.compare import CLIP, clip, compare_cases


def suite_of(tmp_path: Path, **fields: Any) -> SuiteConfig:
    dataset = tmp_path / "cases.jsonl"
    dataset.write_text('{"id": "a", "input": "x", "expected": "y"}\n')
    suite = {
        "name": "qa",
        "dataset": str(dataset),
        "task": "classification",
        "metrics": ["accuracy"],
        "models": ["prod"],
        **fields,
    }
    config = parse_config(
        {
            "models": [{"name": "prod", "adapter": "http", "url": "http://127.0.0.1:9/"}],
            "suites": [suite],
        },
        base_dir=tmp_path,
    )
    return config.suites[0]


def labelled(
    correct: np.ndarray, *, prefix: str = "c", group: list[str] | None = None, **extra: Any
) -> list[CaseResult]:
    """Classification cases whose prediction is right where ``correct`` is 1."""
    return [
        CaseResult(
            case_id=f"{prefix}{i:04d}",
            input={"text": f"case {i}"},
            expected="yes",
            prediction="yes" if ok else "no",
            scores={"accuracy": float(ok)},
            metadata={"lang": group[i]} if group else {},
            latency_seconds=extra.get("latency", [0.1] * len(correct))[i],
            prompt_tokens=extra.get("prompt", [None] * len(correct))[i],
            completion_tokens=extra.get("completion", [None] * len(correct))[i],
        )
        for i, ok in enumerate(correct)
    ]


def test_a_true_drop_regresses_with_the_exact_mcnemar_p_value(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    base = (rng.random(400) < 0.85).astype(int)
    new = base.copy()
    flip = rng.choice(np.flatnonzero(base == 1), 40, replace=False)
    new[flip] = 0
    result = compare_cases(suite_of(tmp_path), labelled(base), labelled(new))
    (row,) = result.metrics
    assert result.outcome == row.outcome == "regressed"
    assert row.method == "mcnemar-exact" and row.n == 400
    assert (row.degraded, row.improved) == (40, 0)
    expected = stats.binomtest(0, 40, 0.5).pvalue
    assert row.p_value == pytest.approx(expected)
    assert row.delta == pytest.approx(-0.1)
    # The bound of the one-sided test behind p_adjusted: a drop, bounded from above.
    assert (row.bound_side, row.bound_level) == ("upper", 0.95)
    assert row.bound is not None and row.lower < row.bound < 0
    # The diff lists degraded cases first, each with both predictions.
    assert result.changes and {c.change for c in result.changes} == {"degraded"}
    assert len(result.changes) == 10
    first = result.changes[0]
    assert (first.baseline_prediction, first.new_prediction) == ("yes", "no")


def test_identical_runs_pass(tmp_path: Path) -> None:
    base = (np.random.default_rng(1).random(300) < 0.7).astype(int)
    result = compare_cases(suite_of(tmp_path), labelled(base), labelled(base))
    assert result.outcome == "pass" and result.changes == []
    assert "300 paired cases" in result.reason


def test_errored_and_missing_cases_are_unpaired_and_counted(tmp_path: Path) -> None:
    base = labelled(np.ones(50, dtype=int))
    new = labelled(np.ones(50, dtype=int))[:45]
    new[0] = CaseResult(new[0].case_id, "x", "yes", error_kind="timeout", error="slow")
    result = compare_cases(suite_of(tmp_path), base, new)
    assert result.metrics[0].n == 44
    assert result.metrics[0].unpaired == 6
    assert "6 cases answered in only one run" in result.reason


def test_no_common_case_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no case answered in both runs"):
        compare_cases(
            suite_of(tmp_path),
            labelled(np.ones(5, dtype=int), prefix="a"),
            labelled(np.ones(5, dtype=int), prefix="b"),
        )


def test_a_collapsed_slice_regresses_while_the_average_holds(tmp_path: Path) -> None:
    n = 600
    group = ["en"] * 500 + ["fr"] * 100
    base = np.ones(n, dtype=int)
    new = base.copy()
    new[500:540] = 0  # 40% of French cases now fail: 6.7% overall
    suite = suite_of(
        tmp_path,
        slices=["lang"],
        verdict={"metrics": {"accuracy": {"max_drop": 0.1}}},
    )
    result = compare_cases(suite, labelled(base, group=group), labelled(new, group=group))
    rows = {(r.metric, r.slice): r for r in result.metrics}
    assert set(rows) == {("accuracy", ""), ("accuracy", "lang=en"), ("accuracy", "lang=fr")}
    assert rows["accuracy", ""].outcome != "regressed"  # a 6.7-point drop is within 0.1
    assert rows["accuracy", "lang=fr"].outcome == "regressed"
    assert result.outcome == "regressed"
    assert "accuracy [lang=fr]" in result.reason


def test_small_slices_are_left_out(tmp_path: Path) -> None:
    group = ["en"] * 95 + ["fr"] * 5
    base = labelled(np.ones(100, dtype=int), group=group)
    result = compare_cases(suite_of(tmp_path, slices=["lang"]), base, base)
    assert {r.slice for r in result.metrics} == {"", "lang=en"}


def test_a_corpus_metric_is_bootstrapped_on_both_runs_resampled_cases(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "c"], 300)
    base_pred = np.where(rng.random(300) < 0.9, truth, rng.choice(["a", "b", "c"], 300))
    new_pred = np.where(rng.random(300) < 0.6, truth, rng.choice(["a", "b", "c"], 300))

    def cases(pred: np.ndarray) -> list[CaseResult]:
        return [
            CaseResult(f"c{i}", {}, t, prediction=p, scores={})
            for i, (t, p) in enumerate(zip(truth, pred, strict=True))
        ]

    suite = suite_of(tmp_path, metrics=[{"name": "f1", "average": "macro"}])
    result = compare_cases(suite, cases(base_pred), cases(new_pred))
    (row,) = result.metrics
    assert row.method == "paired-bootstrap"
    assert row.baseline == pytest.approx(f1_score(truth, base_pred, average="macro"))
    assert row.new == pytest.approx(f1_score(truth, new_pred, average="macro"))
    assert row.lower <= row.delta <= row.upper < 0
    assert result.outcome == "regressed"


def test_error_metrics_regress_when_they_rise(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(10, 2, 200)

    def cases(noise: float) -> list[CaseResult]:
        pred = truth + rng.normal(0, noise, 200)
        return [
            CaseResult(f"c{i}", {}, float(t), prediction=float(p), scores={})
            for i, (t, p) in enumerate(zip(truth, pred, strict=True))
        ]

    suite = suite_of(tmp_path, task="regression", metrics=["mae"])
    worse = compare_cases(suite, cases(0.5), cases(2.0))
    better = compare_cases(suite, cases(2.0), cases(0.5))
    assert (worse.outcome, better.outcome) == ("regressed", "improved")
    # Lower is better: a rise is tested (bounded from below), a fall for the improvement.
    assert (worse.metrics[0].bound_side, better.metrics[0].bound_side) == ("lower", "upper")
    assert worse.metrics[0].bound is not None and worse.metrics[0].bound > 0
    assert better.metrics[0].bound is not None and better.metrics[0].bound < 0


def test_latency_and_cost_are_judged_when_configured(tmp_path: Path) -> None:
    ok = np.ones(200, dtype=int)
    base = labelled(ok, latency=[0.10] * 200, prompt=[100] * 200, completion=[20] * 200)
    slow = labelled(ok, latency=[0.30] * 200, prompt=[100] * 200, completion=[60] * 200)
    suite = suite_of(
        tmp_path,
        verdict={"metrics": {"latency": {"max_drop": "50%"}, "cost": {"max_drop": "10%"}}},
    )
    price = Price(prompt=1.0, completion=2.0, per_tokens=1000, currency="USD")
    result = compare_cases(suite, base, slow, price=price)
    rows = {r.metric: r for r in result.metrics}
    assert rows["latency"].outcome == "regressed"
    assert rows["latency"].delta == pytest.approx(0.2)
    assert rows["cost"].baseline == pytest.approx((100 * 1 + 20 * 2) / 1000)
    assert rows["cost"].outcome == "regressed"
    assert rows["accuracy"].outcome == "pass"
    # Without a price, cost cannot be judged and the reason says so.
    unpriced = compare_cases(suite, base, slow)
    assert "cost" not in {r.metric for r in unpriced.metrics}
    assert "cost: not known" in unpriced.reason


def test_floor_breach_regresses_whatever_the_statistics(tmp_path: Path) -> None:
    base = labelled(np.array([1] * 80 + [0] * 20))
    suite = suite_of(tmp_path, verdict={"metrics": {"accuracy": {"min": 0.9}}})
    result = compare_cases(suite, base, base)
    assert result.outcome == "regressed"
    assert "breaches the floor 0.9" in result.reason


def test_too_few_cases_is_inconclusive_and_says_how_many(tmp_path: Path) -> None:
    base = labelled(np.array([1] * 20))
    new = labelled(np.array([1] * 17 + [0] * 3))
    result = compare_cases(suite_of(tmp_path), base, new)
    assert result.outcome == "inconclusive"
    assert result.metrics[0].cases_needed and result.metrics[0].cases_needed > 20


def test_relative_drop_tolerance(tmp_path: Path) -> None:
    base = labelled(np.array([1] * 1000))
    new = labelled(np.array([1] * 980 + [0] * 20))  # a significant 2-point drop
    tolerant = suite_of(tmp_path, verdict={"metrics": {"accuracy": {"max_drop": "3%"}}})
    strict = suite_of(tmp_path, verdict={"metrics": {"accuracy": {"max_drop": "1%"}}})
    assert compare_cases(tolerant, base, new).outcome != "regressed"
    assert compare_cases(strict, base, new).outcome == "regressed"


def test_clip_keeps_short_values_and_cuts_long_ones() -> None:
    assert clip({"a": 1}) == {"a": 1}
    assert clip(3.5) == 3.5
    long = clip("x" * 1000)
    assert isinstance(long, str) and len(long) == CLIP and long.endswith("…")
    assert len(clip({"text": "y" * 1000})) == CLIP


def test_the_floor_is_checked_overall_not_per_slice(tmp_path: Path) -> None:
    group = ["en"] * 100 + ["fr"] * 100
    correct = np.array([1] * 100 + [1] * 80 + [0] * 20)  # fr sits at 0.8 in both runs
    suite = suite_of(tmp_path, slices=["lang"], verdict={"metrics": {"accuracy": {"min": 0.85}}})
    cases = labelled(correct, group=group)
    result = compare_cases(suite, cases, cases)
    assert result.outcome == "pass", result.reason
    assert {r.slice: r.outcome for r in result.metrics}["lang=fr"] == "pass"
