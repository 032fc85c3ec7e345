"""Metrics against independent references: scikit-learn, scipy, and the SQuAD v2.0
definition of exact match."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score

from monitor.scoring import get_metric, metric_names
from monitor.scoring.intervals import mean_interval
from monitor.scoring.text import normalize_answer


def test_registry_names_and_suggestions() -> None:
    assert {"accuracy", "exact-match"} <= set(metric_names())
    with pytest.raises(KeyError, match="did you mean 'exact-match'"):
        get_metric("exact_match")


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_accuracy_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    expected = rng.choice(["a", "b", "c"], size=500).tolist()
    predicted = [e if rng.random() < 0.7 else rng.choice(["a", "b", "c"]) for e in expected]
    score = get_metric("accuracy").compute(predicted, expected)
    assert score.value == pytest.approx(accuracy_score(expected, predicted), abs=1e-12)
    assert score.per_case is not None and len(score.per_case) == 500


def test_accuracy_treats_json_and_csv_labels_alike() -> None:
    score = get_metric("accuracy").compute([1, 2.0, "3", True], ["1", 2, 3, "true"])
    assert score.value == 1.0


def test_wilson_interval_matches_scipy() -> None:
    scores = [1.0] * 37 + [0.0] * 13
    value, low, high = mean_interval(scores, binary=True)
    ci = stats.binomtest(37, 50).proportion_ci(0.95, method="wilson")
    assert value == 0.74
    assert (low, high) == pytest.approx((ci.low, ci.high))
    # Wilson stays inside [0, 1] at the edges, unlike the normal approximation.
    _, low, high = mean_interval([1.0] * 20, binary=True)
    assert high == pytest.approx(1.0) and 0.8 < low < 1.0


def test_t_interval_for_continuous_scores() -> None:
    scores = [0.2, 0.4, 0.9, 0.5, 0.7]
    value, low, high = mean_interval(scores, binary=False)
    ref = stats.t.interval(0.95, 4, loc=np.mean(scores), scale=stats.sem(scores))
    assert value == pytest.approx(0.54)
    assert (low, high) == pytest.approx(ref)
    assert mean_interval([0.3], binary=False) == (0.3, None, None)


def squad_normalize(s: str) -> str:
    """The official evaluate-v2.0.py normalize_answer, transcribed as the reference."""
    import re
    import string

    def remove_articles(text: str) -> str:
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


@pytest.mark.parametrize(
    "text",
    [
        "The Eiffel Tower!",
        "  an   apple,a pear ",
        "Theatre of the absurd",
        "A.B.C.",
        "naïve café — «ok»",
        "",
    ],
    ids=["articles-punct", "spacing", "article-inside-word", "dots", "unicode", "empty"],
)
def test_normalisation_matches_squad_v2(text: str) -> None:
    assert normalize_answer(text) == squad_normalize(text)


@pytest.mark.parametrize(
    ("prediction", "expected", "score"),
    [
        ("the Eiffel tower", ["Eiffel Tower", "La tour Eiffel"], 1.0),
        ("Eiffel", ["Eiffel Tower"], 0.0),
        ("", [], 1.0),
        ("", None, 1.0),
        ("something", [], 0.0),
        (None, ["x"], 0.0),
        ("Paris.", "paris", 1.0),
    ],
    ids=[
        "max-over-golds",
        "partial",
        "no-answer-right",
        "none-gold",
        "no-answer-wrong",
        "none-prediction",
        "plain-string",
    ],
)
def test_exact_match_cases(prediction: object, expected: object, score: float) -> None:
    result = get_metric("exact-match").compute([prediction], [expected])
    assert result.value == score
    assert not math.isnan(result.lower or 0.0)
