"""The verdict on a ``pairwise`` judge metric is a sign test on wins and losses (ties
dropped), cross-checked against scipy's ``binomtest``; the per-case outcome of two orders
is a win only when both agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

from monitor.config import SuiteConfig
from monitor.records import CaseResult
from monitor.scoring.judged import pairwise_outcome
from monitor.verdicts.compare import compare_cases


def suite(tmp_path: Path) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "1", "input": "q", "expected": "a"}\n')
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "text",
            "metrics": [{"name": "pairwise", "judge": "j"}],
            "models": ["m"],
        }
    )


def cases(outcomes: list[float]) -> tuple[list[CaseResult], list[CaseResult]]:
    base = [CaseResult(f"c{i:03d}", "q", "a", prediction="old") for i in range(len(outcomes))]
    new = [
        CaseResult(f"c{i:03d}", "q", "a", prediction="new", scores={"pairwise": v})
        for i, v in enumerate(outcomes)
    ]
    return base, new


@pytest.mark.parametrize(
    ("wins", "losses", "ties", "outcome"),
    [
        pytest.param(5, 25, 30, "regressed", id="mostly-losses"),
        pytest.param(25, 5, 30, "improved", id="mostly-wins"),
        pytest.param(12, 10, 40, "inconclusive", id="even-few"),
        pytest.param(100, 100, 800, "pass", id="even-many"),
    ],
)
def test_the_pairwise_verdict_is_the_sign_test(
    tmp_path: Path, wins: int, losses: int, ties: int, outcome: str
) -> None:
    base, new = cases([1.0] * wins + [0.0] * losses + [0.5] * ties)
    judgement = compare_cases(suite(tmp_path), base, new)
    (row,) = judgement.metrics
    assert row.outcome == outcome
    assert (row.improved, row.degraded) == (wins, losses)
    assert row.p_value == pytest.approx(stats.binomtest(wins, wins + losses, 0.5).pvalue)
    worse = stats.binomtest(wins, wins + losses, 0.5, alternative="less").pvalue
    better = stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue
    # One metric: Holm leaves the one-sided p-value as it is.
    assert row.p_adjusted == pytest.approx(better if outcome == "improved" else worse)
    assert row.new == pytest.approx(wins / (wins + losses + ties))
    assert row.baseline == pytest.approx(losses / (wins + losses + ties))
    assert (row.cases_needed is not None) is (outcome == "inconclusive")
    if outcome == "regressed":
        assert {c.change for c in judgement.changes} == {"degraded", "improved"}
        assert judgement.changes[0].change == "degraded"


@pytest.mark.parametrize(
    ("first", "second", "score"),
    [
        pytest.param(1, 1, 1.0, id="win-in-both-orders"),
        pytest.param(-1, -1, 0.0, id="loss-in-both-orders"),
        pytest.param(1, -1, 0.5, id="orders-disagree"),
        pytest.param(1, 0, 0.5, id="one-tie"),
        pytest.param(0, 0, 0.5, id="tie"),
    ],
)
def test_two_orders_make_a_win_only_when_they_agree(first: int, second: int, score: float) -> None:
    assert pairwise_outcome(first, second) == score


def test_a_pairwise_answer_is_parsed_as_a_preference_for_answer_a() -> None:
    from monitor.scoring import build_metric
    from monitor.scoring.judged import Pairwise

    metric = build_metric({"name": "pairwise", "judge": "j"})
    assert isinstance(metric, Pairwise)
    prefer = [json.dumps({"reasoning": "r", "verdict": v}) for v in ("A", "B")]
    # A in the first order (the candidate first), B in the second (the candidate second).
    assert metric.combine(prefer) == 1.0
    assert metric.combine(prefer[::-1]) == 0.0
    assert metric.combine([prefer[0], prefer[0]]) == 0.5  # a position-biased judge
    first, second = metric.asks({"input": "q"}, "cand", None, against="base")
    assert (first["answer_a"], first["answer_b"]) == ("cand", "base")
    assert (second["answer_a"], second["answer_b"]) == ("base", "cand")
