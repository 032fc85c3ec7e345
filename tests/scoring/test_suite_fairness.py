"""Fairness of a suite run: the measures of a run's cases equal fairlearn's to 1e-9 at
any answer order, the configuration is checked, the alert rule judges suite runs, and
the gate's Markdown shows a small table."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as fm
from pydantic import ValidationError

from monitor.alerts.rules import observe
from monitor.config import SuiteConfig
from monitor.config.alerts import RuleConfig
from monitor.gate.markdown import render_markdown
from monitor.records import FairnessValue, RunStatus
from monitor.scoring import build_metric
from monitor.scoring.evaluation import Attempt, Evaluation, Fairness
from tests.alerts.test_performance_rules import event
from tests.gate import samples

FAIRLEARN = {
    "demographic_parity_difference": fm.demographic_parity_difference,
    "demographic_parity_ratio": fm.demographic_parity_ratio,
    "equalized_odds_difference": fm.equalized_odds_difference,
}


def cases(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(id, expected, prediction, gender): right 90% of the time for f, 60% for m and x,
    and positive more often for f."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["f", "m", "x"], n, p=[0.5, 0.35, 0.15])
    truth = (rng.random(n) < np.where(gender == "f", 0.6, 0.4)).astype(int)
    right = rng.random(n) < np.where(gender == "f", 0.9, 0.6)
    predicted = np.where(right, truth, 1 - truth)
    return [(f"c{i:04d}", str(truth[i]), str(predicted[i]), str(gender[i])) for i in range(n)]


def evaluate(rows: list[tuple[str, str, str, str]], fairness: Fairness) -> Any:
    evaluation = Evaluation([build_metric("accuracy")], fairness=fairness, seed=3)
    for case_id, expected, predicted, gender in rows:
        evaluation.add(case_id, expected, [Attempt(predicted)], {"gender": gender})
    return evaluation.results()


def test_a_runs_fairness_is_fairlearns_to_1e_9_at_any_answer_order() -> None:
    rows = cases(800, seed=5)
    result = evaluate(rows, Fairness("gender"))
    y = np.array([int(r[1]) for r in rows])
    p = np.array([int(r[2]) for r in rows])
    g = [r[3] for r in rows]
    assert [f.measure for f in result.fairness] == list(FAIRLEARN)
    for f in result.fairness:
        expected = FAIRLEARN[f.measure](y, p, sensitive_features=g)
        assert f.value == pytest.approx(expected, abs=1e-9), f.measure
        assert f.lower is not None and f.upper is not None and f.lower < f.value < f.upper
        assert (f.groups, f.n) == ("gender", 800)
    shuffled = list(rows)
    np.random.default_rng(1).shuffle(shuffled)  # type: ignore[arg-type]
    assert evaluate(shuffled, Fairness("gender")).fairness == result.fairness


def test_only_the_configured_measures_and_an_undefined_one_is_skipped_with_why() -> None:
    # Nobody is predicted positive: parity ratio is 0/0, the differences are 0.
    rows = [(f"c{i}", str(i % 2), "0", "ab"[i % 3 == 0]) for i in range(30)]
    chosen = Fairness("gender", "1", ("demographic_parity_ratio", "equalized_odds_difference"))
    result = evaluate(rows, chosen)
    assert [(f.measure, f.value) for f in result.fairness] == [("equalized_odds_difference", 0)]
    assert "fairness demographic_parity_ratio over gender: undefined" in result.skipped[0]
    assert evaluate(rows, Fairness("gender", positive="0")).fairness[1].value == 1.0


def test_no_fairness_section_measures_nothing() -> None:
    evaluation = Evaluation([build_metric("accuracy")])
    evaluation.add("c1", "1", [Attempt("1")], {})
    assert evaluation.results().fairness == []


def suite(tmp_path: Path, **keys: Any) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "x": 1, "expected": "1", "gender": "f"}) + "\n")
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "metadata": ["gender"],
            **keys,
        }
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"task": "text", "metrics": ["exact-match"]}, "needs a classification suite"),
        ({"metadata": []}, r"fairness.groups: 'gender' must be one of the suite's metadata"),
        (
            {"fairness": {"groups": "gender", "metrics": ["equalized_odds_difference"] * 2}},
            "listed twice",
        ),
        ({"fairness": {"groups": "gender", "metrics": ["accuracy"]}}, "fairness.metrics.0"),
    ],
    ids=["task", "not-metadata", "twice", "unknown-measure"],
)
def test_a_bad_fairness_section_is_refused_naming_the_key(
    tmp_path: Path, keys: dict[str, Any], message: str
) -> None:
    keys = {"fairness": {"groups": "gender"}, **keys}
    with pytest.raises(ValidationError, match=message):
        suite(tmp_path, **keys)


def test_a_fairness_section_defaults_to_every_measure(tmp_path: Path) -> None:
    fairness = suite(tmp_path, fairness={"groups": "gender"}).fairness
    assert fairness is not None and fairness.metrics == tuple(FAIRLEARN)


GAP = FairnessValue("gender", "demographic_parity_difference", 0.3, 0.2, 0.4, 500)
RATIO = FairnessValue("gender", "demographic_parity_ratio", 0.7, 0.6, 0.8, 500)


def rule(**keys: object) -> RuleConfig:
    return RuleConfig.model_validate({"name": "fair", "kind": "fairness", **keys})


def test_a_suite_runs_fairness_beyond_its_limit_fires_and_resolves() -> None:
    unfair = replace(samples.run(42), fairness=(GAP, RATIO))
    (fired,) = observe(rule(value=0.2, suite=samples.SUITE), _finished(unfair))
    assert fired.active and fired.value == 0.3 and fired.links == {"run": "/v1/runs/42"}
    assert fired.labels["suite"] == samples.SUITE and fired.labels["model"] == samples.MODEL
    assert fired.labels["measure"] == "demographic_parity_difference"
    assert "over gender = 0.3 (> 0.2 is bad)" in fired.summary
    fair = replace(unfair, fairness=(replace(GAP, value=0.1),))
    assert not observe(rule(value=0.2), _finished(fair))[0].active
    ratio = rule(metric="demographic_parity_ratio", value=0.8)
    assert observe(ratio, _finished(unfair))[0].active  # 0.7 < 0.8: a ratio is bad below


def test_a_suite_fairness_rule_ignores_what_it_does_not_watch() -> None:
    unfair = replace(samples.run(42), fairness=(GAP,))
    failed = replace(unfair, status=RunStatus.FAILED)
    assert observe(rule(value=0.2), _finished(failed)) == []
    assert observe(rule(value=0.2, model="other"), _finished(unfair)) == []
    assert observe(rule(value=0.2, stream="wine"), _finished(unfair)) == []
    assert observe(rule(value=0.2, suite=samples.SUITE), event(worse=False, dpd=0.9)) == []
    assert observe(rule(value=0.2), _finished(replace(unfair, fairness=()))) == []
    with pytest.raises(ValidationError, match="watches suites or a stream, not both"):
        rule(value=0.2, suite="s", stream="wine")


def _finished(run: Any) -> Any:
    from monitor.alerts.events import RunFinished

    return RunFinished(run)


def test_the_gate_markdown_has_a_fairness_table_beside_the_baseline() -> None:
    verdict = samples.verdict("pass", (samples.comparison("exact-match", "pass"),))
    new = replace(samples.run(42), fairness=(GAP,))
    old = replace(samples.run(12), fairness=(replace(GAP, value=0.1),))
    text = render_markdown(samples.report(verdict, new=new, baseline=old), version="test")
    assert "#### Fairness" in text
    assert r"| demographic\_parity\_difference | gender | 500 | 0.1 | 0.3 | [0.2, 0.4] |" in text
    assert "#### Fairness" not in render_markdown(samples.passed(), version="test")


def test_an_evaluation_with_fairness_gives_the_same_measures_in_a_worker_process() -> None:
    # The runner hands the evaluation to a scoring process when its metrics are CPU-bound.
    evaluation = Evaluation([build_metric("accuracy")], fairness=Fairness("gender"), seed=3)
    for case_id, expected, predicted, group in cases(60, seed=9):
        evaluation.add(case_id, expected, [Attempt(predicted)], {"gender": group})
    copy = pickle.loads(pickle.dumps(evaluation))
    assert copy.results().fairness == evaluation.results().fairness != []
