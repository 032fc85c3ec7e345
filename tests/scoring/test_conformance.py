"""Every metric against an independent reference on known inputs: scikit-learn,
rouge-score, sacrebleu, the official SQuAD v2.0 script and textbook formulas."""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Any

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn import metrics as skm

from monitor.scoring import build_metric, get_metric

LABELS = ["cat", "dog", "bird"]


def _labels(seed: int, n: int = 300) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    expected = rng.choice(LABELS, size=n).tolist()
    predicted = [e if rng.random() < 0.6 else str(rng.choice(LABELS)) for e in expected]
    return predicted, expected


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize(
    ("name", "reference"),
    [
        pytest.param("precision", skm.precision_score, id="precision"),
        pytest.param("recall", skm.recall_score, id="recall"),
        pytest.param("f1", skm.f1_score, id="f1"),
    ],
)
def test_averaged_scores_equal_sklearn(name: str, reference: Any, average: str) -> None:
    predicted, expected = _labels(1)
    score = build_metric({"name": name, "average": average}).compute(predicted, expected)
    assert score.value == pytest.approx(reference(expected, predicted, average=average), abs=1e-12)
    assert score.lower is not None and score.upper is not None
    assert score.lower <= score.value <= score.upper


@pytest.mark.parametrize("label", LABELS)
def test_per_class_f1_equals_sklearn(label: str) -> None:
    predicted, expected = _labels(2)
    per_class = skm.f1_score(expected, predicted, labels=LABELS, average=None)
    score = build_metric({"name": "f1", "label": label}).compute(predicted, expected)
    assert score.value == pytest.approx(per_class[LABELS.index(label)], abs=1e-12)


def test_binary_roc_auc_and_log_loss_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, size=400)
    probability = np.clip(truth * 0.3 + rng.random(400) * 0.7, 0.01, 0.99)
    expected = truth.tolist()
    scores = probability.tolist()
    auc = get_metric("roc-auc").compute(expected, expected, scores)
    loss = get_metric("log-loss").compute(expected, expected, scores)
    assert auc.value == pytest.approx(skm.roc_auc_score(truth, probability), abs=1e-12)
    assert loss.value == pytest.approx(skm.log_loss(truth, probability), abs=1e-12)


def test_multiclass_roc_auc_and_log_loss_read_probability_tables() -> None:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, size=300)
    raw = rng.random((300, 3)) + np.eye(3)[truth] * 0.8
    matrix = raw / raw.sum(axis=1, keepdims=True)
    expected = [LABELS[t] for t in truth]
    scores = [dict(zip(LABELS, row.tolist(), strict=True)) for row in matrix]
    order = sorted(LABELS)
    ordered = matrix[:, [LABELS.index(label) for label in order]]
    auc = get_metric("roc-auc").compute(expected, expected, scores)
    loss = get_metric("log-loss").compute(expected, expected, scores)
    reference_auc = skm.roc_auc_score(expected, ordered, multi_class="ovr", labels=order)
    assert auc.value == pytest.approx(reference_auc, abs=1e-12)
    assert loss.value == pytest.approx(skm.log_loss(expected, ordered, labels=order), abs=1e-12)


def test_score_metrics_refuse_missing_scores() -> None:
    with pytest.raises(ValueError, match="needs the endpoint's scores"):
        get_metric("roc-auc").compute([1, 0], [1, 0], [0.9, None])


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        pytest.param("mae", skm.mean_absolute_error, id="mae"),
        pytest.param("rmse", skm.root_mean_squared_error, id="rmse"),
        pytest.param("r2", skm.r2_score, id="r2"),
        pytest.param("mape", skm.mean_absolute_percentage_error, id="mape"),
    ],
)
def test_regression_equals_sklearn(name: str, reference: Any) -> None:
    rng = np.random.default_rng(5)
    truth = rng.normal(10, 3, size=250)
    predicted = truth + rng.normal(0, 1, size=250)
    score = get_metric(name).compute(predicted.tolist(), truth.tolist())
    assert score.value == pytest.approx(reference(truth, predicted), rel=1e-12)
    assert score.lower is not None and score.upper is not None
    assert score.lower < score.value < score.upper


# --- SQuAD v2.0: the official evaluate-v2.0.py functions, verbatim, as the reference.


def _official_normalize_answer(s: str) -> str:
    def remove_articles(text: str) -> str:
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _official_get_tokens(s: str) -> list[str]:
    if not s:
        return []
    return _official_normalize_answer(s).split()


def _official_compute_exact(a_gold: str, a_pred: str) -> int:
    return int(_official_normalize_answer(a_gold) == _official_normalize_answer(a_pred))


def _official_compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = _official_get_tokens(a_gold)
    pred_toks = _official_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _official_case(golds: list[str], prediction: str) -> tuple[float, float]:
    answers = [a for a in golds if _official_normalize_answer(a)] or [""]
    return (
        max(_official_compute_exact(a, prediction) for a in answers),
        max(_official_compute_f1(a, prediction) for a in answers),
    )


SQUAD_CASES = [
    pytest.param(["The Eiffel Tower"], "eiffel tower", id="articles"),
    pytest.param(["Paris, France."], "paris france", id="punctuation"),
    pytest.param(["São Paulo"], "são  paulo!", id="unicode"),
    pytest.param(["Zürich", "the city of Zurich"], "city of zurich", id="multiple-golds"),
    pytest.param([], "", id="no-answer-empty"),
    pytest.param([], "something", id="no-answer-predicted"),
    pytest.param(["a"], "", id="gold-is-only-an-article"),
    pytest.param(["the cat sat on the mat"], "cat cat sat", id="multiset-overlap"),
    pytest.param(["Denver Broncos"], "Broncos of Denver", id="partial"),
    pytest.param(["1,000"], "1000", id="number-punctuation"),
    pytest.param(["“quoted”"], "quoted", id="non-ascii-punctuation-kept"),
]


@pytest.mark.parametrize(("golds", "prediction"), SQUAD_CASES)
def test_squad_exact_match_and_f1_equal_the_official_script(
    golds: list[str], prediction: str
) -> None:
    exact, f1 = _official_case(golds, prediction)
    assert get_metric("exact-match").compute([prediction], [golds]).value == exact
    assert get_metric("f1-score").compute([prediction], [golds]).value == pytest.approx(f1)


GENERATED = [
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dogs",
    "running runners ran",
    "",
    "hello world, hello again",
]
REFERENCES = [
    "the cat is on the mat",
    "the quick brown fox jumped over the lazy dog",
    "the runner runs",
    "nothing was said",
    "hello world",
]


@pytest.mark.parametrize("stemming", [False, True], ids=["plain", "stemmed"])
@pytest.mark.parametrize(
    ("name", "rouge_type"),
    [
        ("rouge-1", "rouge1"),
        ("rouge-2", "rouge2"),
        ("rouge-l", "rougeL"),
        ("rouge-lsum", "rougeLsum"),
    ],
)
def test_rouge_is_the_mean_of_rouge_score_f_measures(
    name: str, rouge_type: str, stemming: bool
) -> None:
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=stemming)
    per_case = [
        scorer.score(ref, gen)[rouge_type].fmeasure
        for ref, gen in zip(REFERENCES, GENERATED, strict=True)
    ]
    score = build_metric({"name": name, "stemming": stemming}).compute(GENERATED, REFERENCES)
    assert score.per_case == pytest.approx(per_case)
    assert score.value == pytest.approx(sum(per_case) / len(per_case))


def test_bleu_and_chrf_equal_sacrebleu_corpus_scores_with_signature() -> None:
    bleu = get_metric("bleu").compute(GENERATED, REFERENCES)
    chrf = get_metric("chrf").compute(GENERATED, REFERENCES)
    reference_bleu = sacrebleu.corpus_bleu(GENERATED, [REFERENCES])
    reference_chrf = sacrebleu.corpus_chrf(GENERATED, [REFERENCES])
    assert bleu.value == pytest.approx(reference_bleu.score, abs=1e-9)
    assert chrf.value == pytest.approx(reference_chrf.score, abs=1e-9)
    assert bleu.detail is not None and bleu.detail.startswith("nrefs:1|case:mixed")
    assert chrf.detail is not None and "version:" in chrf.detail


SEVERAL_HYPS = ["the cat sat on the mat", "hello world again", "a quick brown fox jumps"]
VARIABLE_REFS = [
    ["the cat is on the mat", "there is a cat on the mat", "a cat sits on the mat"],
    ["hello world"],
    ["the quick brown fox jumps", "a fast brown fox leaps"],
]


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        pytest.param("bleu", sacrebleu.metrics.BLEU, id="bleu"),
        pytest.param("chrf", sacrebleu.metrics.CHRF, id="chrf"),
    ],
)
@pytest.mark.parametrize(
    ("refs", "nrefs"),
    [
        pytest.param(VARIABLE_REFS, "nrefs:var", id="3-1-2-refs"),
        pytest.param([r[:1] for r in VARIABLE_REFS], "nrefs:1", id="1-ref-each"),
        pytest.param([(r * 2)[:2] for r in VARIABLE_REFS], "nrefs:2", id="2-refs-each"),
    ],
)
def test_several_references_score_and_sign_as_sacrebleu(
    name: str, reference: Any, refs: list[list[str]], nrefs: str
) -> None:
    # sacrebleu's own way to pass cases with different numbers of references: one stream
    # per reference position, None where a case has no more.
    width = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
    metric = reference()
    expected = metric.corpus_score(SEVERAL_HYPS, streams)
    score = get_metric(name).compute(SEVERAL_HYPS, refs)
    assert score.value == pytest.approx(expected.score, abs=1e-9)
    assert score.detail == str(metric.get_signature())
    assert score.detail is not None and score.detail.startswith(f"{nrefs}|")


def test_form_checks() -> None:
    predictions = ['{"a": 1}', "not json", '{"a": "x"}', "answer: 42"]
    expected = ["", "", "", "42"]
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert get_metric("json-valid").compute(predictions, expected).per_case == (1, 0, 1, 0)
    json_schema = build_metric({"name": "json-schema", "schema": schema})
    assert json_schema.compute(predictions, expected).per_case == (1, 0, 0, 0)
    regex = build_metric({"name": "regex", "pattern": r"\d+"})
    assert regex.compute(predictions, expected).per_case == (1, 0, 0, 1)
    assert get_metric("contains").compute(["The ANSWER is 42"], ["answer"]).value == 1.0
    strict = build_metric({"name": "contains", "ignore_case": False})
    assert strict.compute(["The ANSWER is 42"], ["answer"]).value == 0.0


def _dcg(grades: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(grades))


def test_ranking_metrics_match_textbook_definitions() -> None:
    predictions = [["a", "b", "c", "d"], ["x", "y"], ["p", "q", "r"]]
    expected: list[Any] = [["b", "d", "e"], ["z"], {"p": 3, "r": 1, "s": 2}]
    at2 = build_metric("precision@2").compute(predictions, expected)
    assert at2.per_case == pytest.approx((0.5, 0.0, 0.5))
    recall3 = build_metric("recall@3").compute(predictions, expected)
    assert recall3.per_case == pytest.approx((1 / 3, 0.0, 2 / 3))
    assert get_metric("mrr").compute(predictions, expected).per_case == pytest.approx(
        (0.5, 0.0, 1.0)
    )
    ndcg = build_metric("ndcg@3").compute(predictions, expected)
    first = _dcg([0, 1, 0]) / _dcg([1, 1, 1])
    third = _dcg([3, 0, 1]) / _dcg([3, 2, 1])
    assert ndcg.per_case == pytest.approx((first, 0.0, third))
    assert build_metric("ndcg@3").label == "ndcg@3"


def test_labels_show_non_default_options() -> None:
    assert build_metric("f1").label == "f1"
    assert build_metric({"name": "f1", "average": "micro"}).label == "f1[average=micro]"
    assert build_metric({"name": "f1", "label": "dog"}).label == "f1[label=dog]"
    assert build_metric({"name": "rouge-l", "stemming": True}).label == "rouge-l[stemming=true]"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"name": "f1", "average": "samples"}, "expected one of macro", id="average"),
        pytest.param({"name": "accuracy", "k": 3}, "has no option 'k'", id="unknown-option"),
        pytest.param({"name": "regex"}, "needs a 'pattern'", id="missing-pattern"),
        pytest.param({"name": "regex", "pattern": "("}, "invalid", id="bad-pattern"),
        pytest.param({"name": "ndcg@k", "k": "3"}, "expected int", id="k-type"),
        pytest.param({"average": "macro"}, "needs a 'name'", id="no-name"),
        pytest.param("rouge_l", "did you mean 'rouge-l'", id="suggestion"),
        pytest.param({"name": "json-schema", "schema": {"type": 5}}, "json-schema", id="schema"),
    ],
)
def test_bad_metric_specs_are_explained(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_metric(spec)


def test_bootstrap_interval_is_seeded_and_covers_the_value() -> None:
    predicted, expected = _labels(6)
    metric = build_metric({"name": "f1", "average": "macro"})
    first = metric.compute(predicted, expected, seed=7)
    again = metric.compute(predicted, expected, seed=7)
    other = metric.compute(predicted, expected, seed=8)
    assert first == again
    assert (first.lower, first.upper) != (other.lower, other.upper)
    assert first.lower is not None and first.upper is not None
    assert first.lower < first.value < first.upper


@pytest.mark.parametrize("spec", ["macro", "micro", "weighted", "label"])
@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_bootstrap_path_equals_sklearn_on_resampled_cases(name: str, spec: str) -> None:
    predicted, expected = _labels(9, n=120)
    options = {"label": "dog"} if spec == "label" else {"average": spec}
    metric = build_metric({"name": name, **options})
    statistic = metric.statistic(predicted, expected, None)
    reference = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = rng.integers(0, 120, size=120)
        truth, guess = [expected[i] for i in idx], [predicted[i] for i in idx]
        if spec == "label":
            want = reference[name](truth, guess, labels=["dog"], average="macro", zero_division=0.0)
        else:
            want = reference[name](truth, guess, average=spec, zero_division=0.0)
        assert statistic(idx) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("name", ["roc-auc", "log-loss"])
def test_score_metrics_bootstrap_path_equals_sklearn_on_resampled_cases(name: str) -> None:
    """The bootstrap recomputes binary ROC AUC by ranks (Mann-Whitney U) and log loss as
    the mean of per-case losses; both equal scikit-learn on resampled cases, ties and
    probabilities of 0 and 1 included."""
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 300)
    scores = np.round(np.clip(truth * 0.3 + rng.random(300) * 0.7, 0, 1), 2)
    scores[:3] = [0.0, 1.0, 1.0]
    metric = build_metric(name)
    statistic = metric.statistic([None] * 300, [str(t) for t in truth], scores.tolist())
    function = skm.roc_auc_score if name == "roc-auc" else skm.log_loss
    assert statistic(np.arange(300)) == function(truth, scores)
    for _ in range(20):
        idx = rng.integers(0, 300, size=300)
        assert statistic(idx) == pytest.approx(function(truth[idx], scores[idx]), abs=1e-9)
