"""Judge metrics, pure: options, prompts and their hashes, the answer schema, and how an
answer becomes a score (or a judge error, never a score); judged attempts in an
evaluation."""

from __future__ import annotations

import hashlib
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from monitor.scoring import build_metric
from monitor.scoring.evaluation import Attempt, Evaluation, Repeats
from monitor.scoring.judged import JudgeAnswerError, JudgeMetric, reduce_judgements


def judge_metric(**spec: Any) -> JudgeMetric:
    metric = build_metric({"judge": "j", **spec})
    assert isinstance(metric, JudgeMetric)
    return metric


def verdict(value: Any) -> str:
    return json.dumps({"reasoning": "because", "verdict": value})


@pytest.mark.parametrize(
    ("scale", "answer", "score"),
    [
        pytest.param("binary", "pass", 1.0, id="binary-pass"),
        pytest.param("binary", "fail", 0.0, id="binary-fail"),
        pytest.param("1-5", 4, 4.0, id="1-5"),
        pytest.param(["poor", "fair", "good"], "fair", 0.5, id="classes-middle"),
        pytest.param(["poor", "fair", "good"], "good", 1.0, id="classes-best"),
    ],
)
def test_rubric_scores_its_scale(scale: Any, answer: Any, score: float) -> None:
    metric = judge_metric(name="rubric", criterion="is polite", scale=scale)
    assert metric.parse(verdict(answer)) == score
    assert metric.proportion is (scale == "binary")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        pytest.param("Verdict: pass", "not JSON", id="prose"),
        pytest.param('```json\n{"verdict": "pass"}\n```', "not JSON", id="fenced"),
        pytest.param(json.dumps({"verdict": "pass"}), "'reasoning' is a required", id="missing"),
        pytest.param(verdict("maybe"), "at verdict", id="off-scale"),
        pytest.param(verdict(6), "at verdict", id="out-of-range"),
        pytest.param(json.dumps([1]), "(top level)", id="not-an-object"),
    ],
)
def test_an_answer_off_the_schema_is_a_judge_error(answer: str, why: str) -> None:
    scale = "1-5" if "6" in answer else "binary"
    metric = judge_metric(name="rubric", criterion="c", scale=scale)
    with pytest.raises(JudgeAnswerError, match=why):
        metric.parse(answer)


def test_the_schema_puts_reasoning_before_the_verdict_and_allows_nothing_else() -> None:
    schema = judge_metric(name="rubric", criterion="c", scale="1-5").schema()
    assert list(schema["properties"]) == ["reasoning", "verdict"]
    assert schema["properties"]["verdict"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("claims", "score"),
    [
        pytest.param([True, True, False, False], 0.5, id="half"),
        pytest.param([True], 1.0, id="all"),
        pytest.param([], 1.0, id="no-claims"),
    ],
)
def test_faithfulness_is_the_supported_share_of_claims(claims: list[bool], score: float) -> None:
    metric = judge_metric(name="faithfulness")
    answer = {"claims": [{"claim": "c", "reasoning": "r", "supported": s} for s in claims]}
    assert metric.parse(json.dumps(answer)) == score
    assert metric.parse(answer) == score  # an already decoded answer


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"name": "rubric", "criterion": "c"}, "needs a 'judge'", id="no-judge"),
        pytest.param({"name": "rubric", "judge": "j"}, "needs a 'criterion'", id="no-criterion"),
        pytest.param(
            {"name": "rubric", "judge": "j", "criterion": "c", "scale": "1-10"},
            'expected "binary", "1-5"',
            id="bad-scale",
        ),
        pytest.param(
            {"name": "rubric", "judge": "j", "criterion": "c", "scale": ["ok", "ok"]},
            "at least two distinct",
            id="repeated-classes",
        ),
        pytest.param({"name": "faithfulness", "judge": 3}, "expected str", id="judge-type"),
    ],
)
def test_bad_options_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_metric(spec)


def test_the_label_is_the_name_or_its_title() -> None:
    assert judge_metric(name="rubric", criterion="c").label == "rubric"
    assert judge_metric(name="rubric", criterion="c", title="tone").label == "rubric:tone"


def test_the_prompt_is_the_packaged_file_or_the_prompt_file(tmp_path: Path) -> None:
    packaged = resources.files("monitor.scoring").joinpath("prompts/faithfulness.txt")
    metric = judge_metric(name="faithfulness")
    assert metric.prompt == packaged.read_text(encoding="utf-8")
    assert metric.prompt_sha256 == hashlib.sha256(packaged.read_bytes()).hexdigest()
    own = tmp_path / "mine.txt"
    own.write_text("Judge {{answer}} against {{context}}.", encoding="utf-8")
    mine = judge_metric(name="faithfulness", prompt_file=str(own))
    assert mine.prompt_sha256 == hashlib.sha256(own.read_bytes()).hexdigest()


def test_fields_fill_every_placeholder_of_the_packaged_prompts() -> None:
    inputs = {"question": "Why?", "context": "Because."}
    for spec in (
        {"name": "rubric", "criterion": "is short"},
        {"name": "answer-relevance"},
        {"name": "context-relevance"},
        {"name": "faithfulness"},
    ):
        metric = judge_metric(**spec)
        fields = metric.fields(inputs, "Because.", None)
        for placeholder in re.findall(r"\{\{\s*(\w+)\s*\}\}", metric.prompt):
            assert placeholder in fields, (spec["name"], placeholder)
        assert fields["input"] == json.dumps(inputs, sort_keys=True)


def test_a_case_without_the_context_field_names_it() -> None:
    metric = judge_metric(name="faithfulness", context="passage")
    with pytest.raises(KeyError, match="passage"):
        metric.fields({"question": "q"}, "a", None)


def test_judged_attempts_score_a_case_and_a_judge_error_leaves_it_out() -> None:
    rubric = judge_metric(name="rubric", criterion="c")
    evaluation = Evaluation([rubric, build_metric("contains")], seed=1)
    judged: list[float | None] = [1.0, 0.0, None, 1.0]
    for i, score in enumerate(judged):
        scored = evaluation.add(f"c{i}", "x", [Attempt("x", judged={"rubric": score})], slices={})
        assert ("rubric" in scored.scores) is (score is not None)
    values = {m.name: m for m in evaluation.results().metrics}
    assert values["rubric"].n == 3
    assert values["rubric"].value == pytest.approx(2 / 3)
    assert values["contains"].n == 4  # the case itself was answered


def test_repeated_judgements_reduce_over_the_attempts_the_judge_scored() -> None:
    rubric = judge_metric(name="rubric", criterion="c")
    evaluation = Evaluation([rubric], repeats=Repeats(reducer="mean"))
    attempts = [Attempt("a", judged={"rubric": s}) for s in (1.0, None, 0.0, 1.0)]
    scored = evaluation.add("c", None, attempts, slices={})
    assert scored.scores["rubric"] == pytest.approx(2 / 3)
    none = evaluation.add("d", None, [Attempt("a", judged={"rubric": None})] * 2, slices={})
    assert "rubric" not in none.scores
    (value,) = evaluation.results().metrics
    assert value.n == 1 and not math.isnan(value.value)


@pytest.mark.parametrize(
    ("values", "reducer", "score", "agreement"),
    [
        pytest.param([1.0, 1.0, 0.0], "majority", 1.0, 2 / 3, id="majority"),
        pytest.param([1.0, 1.0, 0.0], "mean", 2 / 3, 2 / 3, id="mean"),
        pytest.param([3.0, 4.0], "majority", 3.0, 0.5, id="tie-to-first"),
        pytest.param([5.0, 5.0, 5.0], "mean", 5.0, 1.0, id="unanimous"),
    ],
)
def test_repeated_judgements_reduce_with_their_agreement(
    values: list[float], reducer: str, score: float, agreement: float
) -> None:
    assert reduce_judgements(values, reducer) == (pytest.approx(score), pytest.approx(agreement))


def test_g_eval_weights_the_verdicts_alternatives() -> None:
    import math as m

    from monitor.scoring.judged import weighted_score

    tokens = [
        {"token": "{", "top_logprobs": []},
        {
            "token": "4",
            "top_logprobs": [
                {"token": "4", "logprob": m.log(0.5)},
                {"token": " 5", "logprob": m.log(0.25)},
                {"token": "3", "logprob": m.log(0.25)},
            ],
        },
    ]
    scale = (1, 2, 3, 4, 5)
    assert weighted_score(tokens, 4, scale) == pytest.approx(4.0)
    tokens[1]["top_logprobs"][2]["token"] = "five"  # off the scale: left out
    assert weighted_score(tokens, 4, scale) == pytest.approx((0.5 * 4 + 0.25 * 5) / 0.75)
    assert weighted_score(tokens, 2, scale) is None  # no token carries the verdict
    metric = judge_metric(name="g-eval", criterion="c")
    answer = verdict(4)
    assert metric.combine([answer], [tokens]) == pytest.approx((0.5 * 4 + 0.25 * 5) / 0.75)
    assert metric.combine([answer], [None]) == 4.0


def test_a_binary_rubric_with_the_judges_error_rates_is_corrected() -> None:
    from monitor.scoring.judged import rogan_gladen

    # A judge with sensitivity 0.9 and specificity 0.8 passes 0.9 p + 0.2 (1 - p).
    true_share = 0.6
    judged = 0.9 * true_share + 0.2 * (1 - true_share)
    assert rogan_gladen(judged, 0.9, 0.8) == pytest.approx(true_share)
    rubric = judge_metric(name="rubric", criterion="c", sensitivity=0.9, specificity=0.8)
    evaluation = Evaluation([rubric])
    for i in range(100):
        passed = 1.0 if i < round(judged * 100) else 0.0
        evaluation.add(f"c{i:03d}", None, [Attempt("a", judged={"rubric": passed})], slices={})
    (value,) = evaluation.results().metrics
    assert value.value == pytest.approx(true_share)
    assert value.lower is not None and value.upper is not None
    assert value.lower < true_share < value.upper
    assert value.detail is not None and "Rogan-Gladen" in value.detail
    with pytest.raises(ValueError, match="with a sum above 1"):
        judge_metric(name="rubric", criterion="c", sensitivity=0.4, specificity=0.5)
    with pytest.raises(ValueError, match="together"):
        judge_metric(name="rubric", criterion="c", sensitivity=0.9)
