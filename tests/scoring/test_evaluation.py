"""Reducers, slices and their gaps, and operational metrics: pure, on known inputs."""

from __future__ import annotations

import pickle
import random

import pytest

from monitor.records import SliceMetric
from monitor.scoring import build_metric
from monitor.scoring.evaluation import (
    Attempt,
    CaseIds,
    Evaluation,
    Repeats,
    score_cases,
    slice_gaps,
)
from monitor.scoring.operations import OperationsRecorder, Price
from monitor.scoring.repeats import majority_index, reduce_scores, representative


@pytest.mark.parametrize(
    ("reducer", "at_least", "want"),
    [
        pytest.param("mean", None, 0.5, id="mean"),
        pytest.param("majority", None, 1.0, id="majority"),
        pytest.param("pass_at_k", None, 1.0, id="pass-at-k"),
        pytest.param("at_least_k", 2, 1.0, id="at-least-2"),
        pytest.param("at_least_k", 3, 0.0, id="at-least-3"),
    ],
)
def test_reducers_on_four_attempts(reducer: str, at_least: int | None, want: float) -> None:
    predictions = ["b", "a", "a", "c"]
    scores = [0.0, 1.0, 1.0, 0.0]
    chosen = majority_index(predictions)
    assert chosen == 1
    got = reduce_scores(scores, reducer, majority=chosen, at_least=at_least)  # type: ignore[arg-type]
    assert got == want


def test_majority_ties_go_to_the_first_seen_answer_and_mean_averages_numbers() -> None:
    assert majority_index(["x", "y", "y", "x"]) == 0
    assert representative([1.0, 2.0, 4.0], "mean", numeric=True) == pytest.approx(7 / 3)
    assert representative(["p", "q", "q"], "mean", numeric=False) == "q"


def test_repeated_binary_metric_with_mean_is_no_longer_a_proportion() -> None:
    evaluation = Evaluation([build_metric("accuracy")], repeats=Repeats("mean"))
    for i, answers in enumerate((["a", "a"], ["a", "b"], ["b", "b"])):
        scored = evaluation.add(f"c{i}", "a", [Attempt(p) for p in answers], {})
        assert scored.attempts == answers
    (accuracy,) = evaluation.results().metrics
    assert accuracy.value == pytest.approx(0.5) and accuracy.n == 3
    assert accuracy.lower is not None and accuracy.lower >= 0.0


def test_slices_compute_every_metric_per_value_and_the_largest_gap() -> None:
    evaluation = Evaluation(
        [build_metric("accuracy"), build_metric({"name": "f1", "average": "macro"})],
        slices=["segment"],
    )
    rows = [
        ("a", "a", "en"),
        ("b", "b", "en"),
        ("a", "b", "fr"),
        ("b", "b", "fr"),
        ("a", "a", None),
    ]
    for i, (expected, predicted, segment) in enumerate(rows):
        evaluation.add(f"c{i}", expected, [Attempt(predicted)], {"segment": segment})
    result = evaluation.results()
    by_slice = {(s.value, s.metric): s for s in result.slices}
    assert by_slice["en", "accuracy"].score == 1.0 and by_slice["en", "accuracy"].n == 2
    assert by_slice["fr", "accuracy"].score == 0.5
    assert by_slice["(missing)", "accuracy"].n == 1
    gaps = {g.metric: g for g in result.gaps}
    assert (gaps["accuracy"].gap, gaps["accuracy"].worst) == (0.5, "fr")
    assert {m.name for m in result.metrics} == {"accuracy", "f1"}


def test_slice_gap_needs_two_values() -> None:
    only = [SliceMetric("segment", "en", "accuracy", 0.9, None, None, 3)]
    assert slice_gaps(only) == []


def test_metric_that_cannot_be_computed_is_skipped_with_reason() -> None:
    evaluation = Evaluation([build_metric("roc-auc"), build_metric("accuracy")])
    evaluation.add("c1", "1", [Attempt("1", None)], {})
    evaluation.add("c2", "0", [Attempt("0", None)], {})
    result = evaluation.results()
    assert [m.name for m in result.metrics] == ["accuracy"]
    assert result.skipped and "roc-auc" in result.skipped[0]


def test_cost_is_known_only_with_a_price_and_usage_on_every_request() -> None:
    price = Price(prompt=2.0, completion=6.0, per_tokens=1_000_000, currency="USD")
    known = OperationsRecorder(price)
    for latency in (0.1, 0.2, 0.3, 0.4):
        known.request(latency, 1000, 500)
        known.case(failed=False)
    known.case(failed=True)
    summary = known.summary(wall_seconds=2.0)
    assert summary.cost == pytest.approx((4000 * 2.0 + 2000 * 6.0) / 1_000_000)
    assert (summary.prompt_tokens, summary.completion_tokens, summary.currency) == (
        4000,
        2000,
        "USD",
    )
    assert summary.error_rate == pytest.approx(0.2) and summary.throughput == pytest.approx(2.0)
    assert summary.latency_p50 == pytest.approx(0.25)
    unpriced = OperationsRecorder(None)
    unpriced.request(0.1, 10, 5)
    assert unpriced.summary(1.0).cost is None and unpriced.summary(1.0).prompt_tokens == 10
    no_usage = OperationsRecorder(price)
    no_usage.request(0.1, 10, 5)
    no_usage.request(0.1, None, None)
    assert no_usage.summary(1.0).cost is None and no_usage.summary(1.0).prompt_tokens is None


def _evaluation(order: list[int]) -> Evaluation:
    metrics = ["exact-match", "f1-score", "rouge-l", "bleu", {"name": "f1", "average": "macro"}]
    evaluation = Evaluation([build_metric(m) for m in metrics], slices=["segment"], seed=3)
    for i in order:
        answer = ["a b c", "a b", "b c d", "c"][i % 4]
        expected = ["a b c", "b c d"][i % 2]
        evaluation.add(f"id-{i}", expected, [Attempt(answer)], {"segment": f"s{i % 3}"})
    return evaluation


def test_aggregates_do_not_depend_on_the_order_cases_came_in() -> None:
    # Every bootstrap resamples the cases sorted by id: answers that finish in another
    # order (another concurrency) give the same intervals, overall and per slice.
    order = list(range(60))
    shuffled = random.Random(5).sample(order, len(order))
    first, second = _evaluation(order).results(), _evaluation(shuffled).results()
    assert first == second
    assert all(m.lower is not None and m.lower < m.upper for m in first.metrics if m.upper)


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param(["b", "a", "ab", "", "aa"], id="prefixes"),
        pytest.param(["10", "9", "100", "1"], id="digits-as-text"),
        pytest.param(["é", "z", "中", "e"], id="non-ascii"),
    ],
)
def test_case_ids_sort_as_python_sorts_their_strings(ids: list[str]) -> None:
    packed = CaseIds()
    for case_id in ids:
        packed.append(case_id)
    assert [ids[i] for i in packed.order()] == sorted(ids)


def test_a_pickled_scorer_scores_as_the_original() -> None:
    # What a scoring process gets: the metrics as their class and options, built again.
    schema = {"type": "object", "required": ["a"]}
    metrics = [build_metric(m) for m in ("rouge-lsum", {"name": "json-schema", "schema": schema})]
    scorer = Evaluation(metrics, repeats=Repeats("majority")).scorer
    cases = [("a b\nc", [Attempt("a b\nd"), Attempt('{"a": 1}'), Attempt("a b\nd")])]
    assert score_cases(pickle.dumps(scorer), cases) == [scorer.score(*cases[0])]
    assert pickle.loads(pickle.dumps(metrics[1])).label == metrics[1].label
