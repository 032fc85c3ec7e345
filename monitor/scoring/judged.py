"""Metrics an LLM judge scores: ``rubric``, ``faithfulness``, ``answer-relevance``,
``context-relevance``, ``pairwise``.

A judge is a ``[[models]]`` entry with ``role = "judge"``; a judge metric names it
(``{name = "rubric", judge = "gpt-judge", criterion = "..."}``). This module is pure: it
says what to ask (the prompt template, its sha256, the fields that fill it, the JSON
schema of the answer) and how to read the answer (``parse``). Asking is the runner's
(``monitor.runs.judging``), through the judge's own adapter and transport.

An answer that is not JSON, or not valid against the schema, is a ``JudgeAnswerError``:
the case then has no score for that metric (a judge error, counted with the run), never a
score made up from a bad answer.

Prompts are files (``monitor/scoring/prompts/<metric>.txt``, or the metric's
``prompt_file``) with ``{{field}}`` placeholders, so users can read and override them; the
sha256 of the text used is stored with the run next to the scores it produced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from monitor.scoring.base import Option, PerCaseMetric, Task, register

_TEXT: frozenset[Task] = frozenset({"text"})

BINARY = ("fail", "pass")
SCALE_1_5 = "1-5"


class JudgeAnswerError(ValueError):
    """A judge's answer that is not valid JSON for the metric's schema."""


class JudgeMetric(PerCaseMetric):
    """A per-case metric whose score a judge model gives. ``score_case`` is not used:
    the runner asks the judge and ``parse`` turns its answer into the case's score."""

    options: ClassVar[Mapping[str, Option]] = {
        "judge": Option((str,)),
        "prompt_file": Option((str,)),
        "title": Option((str,)),
    }
    prompt_name: ClassVar[str]
    needs_baseline: ClassVar[bool] = False
    """True when each answer is judged against the baseline's answer to the case."""
    wants_logprobs: ClassVar[bool] = False
    """True when the judge is asked for its answer's token log-probabilities."""

    def check(self) -> None:
        if not self.settings["judge"]:
            raise ValueError(
                f"metric {self.name!r} needs a 'judge': the name of a model with role = \"judge\""
            )
        title = self.settings.get("title")
        if title is not None and not title.strip():
            raise ValueError(f"option 'title' of metric {self.name!r}: must not be empty")

    @property
    def judge(self) -> str:
        """The name of the judge model."""
        return str(self.settings["judge"])

    @property
    def label(self) -> str:
        """``rubric`` or ``rubric:<title>``: the judge, prompt and criterion are stored
        with the run, not in the label, so a metric keeps its name when they change."""
        title = self.settings.get("title")
        return f"{self.name}:{title}" if title else self.name

    @cached_property
    def prompt(self) -> str:
        """The prompt template: the ``prompt_file`` or the packaged default."""
        path = self.settings.get("prompt_file")
        if path is not None:
            return Path(path).read_text(encoding="utf-8")
        return (
            resources.files("monitor.scoring")
            .joinpath(f"prompts/{self.prompt_name}.txt")
            .read_text(encoding="utf-8")
        )

    @property
    def prompt_sha256(self) -> str:
        """The sha256 of the prompt template's UTF-8 text."""
        return hashlib.sha256(self.prompt.encode()).hexdigest()

    def fields(self, inputs: Mapping[str, Any], prediction: Any, expected: Any) -> dict[str, Any]:
        """What fills the prompt's placeholders for one answer: the case's input fields
        (each by name, and all of them as ``input``), ``answer``, ``expected`` and the
        metric's own (``criterion``, ``scale``)."""
        return {
            **inputs,
            "input": _as_text(inputs["input"] if set(inputs) == {"input"} else inputs),
            "answer": _as_text(prediction),
            "expected": _as_text(expected),
            **self._own_fields(),
        }

    def _own_fields(self) -> dict[str, str]:
        return {}

    def asks(
        self, inputs: Mapping[str, Any], prediction: Any, expected: Any, against: Any = None
    ) -> list[dict[str, Any]]:
        """The prompt fields of each request one answer takes (one, but two for
        ``pairwise``: both orders). ``against`` is the answer compared with, if any."""
        return [self.fields(inputs, prediction, expected)]

    def combine(self, answers: list[Any], logprobs: list[Any] | None = None) -> float:
        """The case's score from the judge's answers to ``asks`` (``JudgeAnswerError``
        when one is not valid); ``logprobs`` are each answer's token log-probabilities
        when the metric asked for them and the endpoint gave them."""
        (answer,) = answers
        return self.parse(answer)

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the judge's answer (sent as the endpoint's structured-output
        schema where the adapter supports it, and always validated)."""
        raise NotImplementedError

    def parse(self, answer: Any) -> float:
        """The case's score from the judge's answer (text or an already decoded object);
        ``JudgeAnswerError`` when it is not valid JSON for ``schema``."""
        return self._score(_validated(answer, self.schema()))

    def _score(self, answer: dict[str, Any]) -> float:
        raise NotImplementedError

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        raise TypeError(f"metric {self.name!r} is scored by its judge, not by score_case")


class VerdictMetric(JudgeMetric):
    """A judge metric whose answer is ``{"reasoning": ..., "verdict": <scale value>}``."""

    def scale_values(self) -> tuple[Any, ...]:
        return BINARY

    def _own_fields(self) -> dict[str, str]:
        return {"scale": describe_scale(self.scale_values())}

    def schema(self) -> dict[str, Any]:
        values = list(self.scale_values())
        kind = "integer" if all(isinstance(v, int) for v in values) else "string"
        return {
            "type": "object",
            "properties": {
                "reasoning": {"type": "string"},
                "verdict": {"type": kind, "enum": values},
            },
            "required": ["reasoning", "verdict"],
            "additionalProperties": False,
        }

    def _score(self, answer: dict[str, Any]) -> float:
        return verdict_score(self.scale_values(), answer["verdict"])


@register
class Rubric(VerdictMetric):
    """``rubric``: a user-written ``criterion`` judged on a ``scale``: ``"binary"``
    (fail 0, pass 1; a proportion), ``"1-5"`` (the score itself) or a list of labelled
    classes from worst to best (class ``i`` of ``k`` scores ``i / (k - 1)``)."""

    name = "rubric"
    tasks = _TEXT
    prompt_name = "rubric"
    options: ClassVar[Mapping[str, Option]] = {
        **JudgeMetric.options,
        "criterion": Option((str,)),
        "scale": Option((str, list), "binary"),
        "sensitivity": Option((float, int)),
        "specificity": Option((float, int)),
    }

    def check(self) -> None:
        super().check()
        _check_error_rates(self)
        criterion = self.settings["criterion"]
        if criterion is None or not criterion.strip():
            raise ValueError("metric 'rubric' needs a 'criterion': what the judge checks")
        scale = self.settings["scale"]
        if isinstance(scale, str) and scale not in ("binary", SCALE_1_5):
            raise ValueError(
                "option 'scale' of metric 'rubric': expected \"binary\", \"1-5\" or a list"
                f" of class labels from worst to best, got {scale!r}"
            )
        if isinstance(scale, list) and (
            len(scale) < 2
            or not all(isinstance(v, str) and v.strip() for v in scale)
            or len(set(scale)) != len(scale)
        ):
            raise ValueError(
                "option 'scale' of metric 'rubric': a list of at least two distinct,"
                " non-empty class labels, from worst to best"
            )

    @property
    def binary(self) -> bool:  # type: ignore[override]
        return bool(self.settings["scale"] == "binary")

    def scale_values(self) -> tuple[Any, ...]:
        scale = self.settings["scale"]
        if scale == "binary":
            return BINARY
        if scale == SCALE_1_5:
            return (1, 2, 3, 4, 5)
        return tuple(scale)

    def _own_fields(self) -> dict[str, str]:
        return {**super()._own_fields(), "criterion": str(self.settings["criterion"])}


@register
class AnswerRelevance(VerdictMetric):
    """``answer-relevance``: whether the answer addresses the input (pass 1, fail 0)."""

    name = "answer-relevance"
    tasks = _TEXT
    prompt_name = "answer-relevance"
    binary = True


@register
class ContextRelevance(VerdictMetric):
    """``context-relevance``: whether the case's ``context`` field is relevant to its
    input (pass 1, fail 0), for RAG suites."""

    name = "context-relevance"
    tasks = _TEXT
    prompt_name = "context-relevance"
    binary = True
    options: ClassVar[Mapping[str, Option]] = {
        **JudgeMetric.options,
        "context": Option((str,), "context"),
    }

    def fields(self, inputs: Mapping[str, Any], prediction: Any, expected: Any) -> dict[str, Any]:
        return {**super().fields(inputs, prediction, expected), **_context(self, inputs)}


@register
class Faithfulness(JudgeMetric):
    """``faithfulness``: the share of the answer's claims that the case's ``context``
    field supports. The judge lists the claims, then checks each; an answer without a
    claim scores 1 (it asserts nothing unsupported)."""

    name = "faithfulness"
    tasks = _TEXT
    prompt_name = "faithfulness"
    options: ClassVar[Mapping[str, Option]] = {
        **JudgeMetric.options,
        "context": Option((str,), "context"),
    }

    def fields(self, inputs: Mapping[str, Any], prediction: Any, expected: Any) -> dict[str, Any]:
        return {**super().fields(inputs, prediction, expected), **_context(self, inputs)}

    def schema(self) -> dict[str, Any]:
        claim = {
            "type": "object",
            "properties": {
                "claim": {"type": "string"},
                "reasoning": {"type": "string"},
                "supported": {"type": "boolean"},
            },
            "required": ["claim", "reasoning", "supported"],
            "additionalProperties": False,
        }
        return {
            "type": "object",
            "properties": {"claims": {"type": "array", "items": claim}},
            "required": ["claims"],
            "additionalProperties": False,
        }

    def _score(self, answer: dict[str, Any]) -> float:
        claims = answer["claims"]
        if not claims:
            return 1.0
        return sum(1 for c in claims if c["supported"]) / len(claims)


@register
class Pairwise(JudgeMetric):
    """``pairwise``: the answer against the baseline's answer to the same case, judged
    in both orders to cancel position bias. The answer wins (1) when it is preferred in
    both orders, loses (0) when the baseline's is, and ties (0.5) otherwise, the two orders
    disagreeing included; the run's value is the win rate with ties counted half. A
    verdict on it is a sign test on wins and losses (``monitor.verdicts.compare``).

    ``against`` is where the baseline answer comes from: ``"baseline"`` (default) the
    answers of the suite's active baseline run for the model (else production's), or the
    name of a case field that holds one."""

    name = "pairwise"
    tasks = _TEXT
    prompt_name = "pairwise"
    needs_baseline: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Option]] = {
        **JudgeMetric.options,
        "criterion": Option((str,), "Which answer is more correct, helpful and complete?"),
        "against": Option((str,), "baseline"),
    }

    def check(self) -> None:
        super().check()
        if not str(self.settings["criterion"]).strip():
            raise ValueError("option 'criterion' of metric 'pairwise': must not be empty")

    def asks(
        self, inputs: Mapping[str, Any], prediction: Any, expected: Any, against: Any = None
    ) -> list[dict[str, Any]]:
        base = self.fields(inputs, prediction, expected)
        criterion = str(self.settings["criterion"])
        first, second = _as_text(prediction), _as_text(against)
        return [
            {**base, "criterion": criterion, "answer_a": first, "answer_b": second},
            {**base, "criterion": criterion, "answer_a": second, "answer_b": first},
        ]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "reasoning": {"type": "string"},
                "verdict": {"type": "string", "enum": ["A", "B", "tie"]},
            },
            "required": ["reasoning", "verdict"],
            "additionalProperties": False,
        }

    def _score(self, answer: dict[str, Any]) -> float:
        # The preference for answer A: +1, -1 for B, 0 for a tie.
        return {"A": 1.0, "B": -1.0, "tie": 0.0}[answer["verdict"]]

    def combine(self, answers: list[Any], logprobs: list[Any] | None = None) -> float:
        first, second = (self.parse(a) for a in answers)
        return pairwise_outcome(first, -second)


@register
class GEval(Rubric):
    """``g-eval``: a ``rubric`` on a 1-5 scale (or ``scale``) whose score is the mean of
    the scale's values weighted by the judge's probability of each (G-Eval, Liu et al.
    2023, arXiv:2303.16634), read from the log-probabilities of the verdict's token when
    the endpoint returns them; the plain verdict otherwise."""

    name = "g-eval"
    prompt_name = "g-eval"
    wants_logprobs = True
    options: ClassVar[Mapping[str, Option]] = {**Rubric.options, "scale": Option((str,), "1-5")}

    def check(self) -> None:
        super().check()
        if self.settings["scale"] != SCALE_1_5:
            raise ValueError("option 'scale' of metric 'g-eval': only \"1-5\" is supported")

    def combine(self, answers: list[Any], logprobs: list[Any] | None = None) -> float:
        (answer,) = answers
        plain = self.parse(answer)
        tokens = logprobs[0] if logprobs else None
        weighted = weighted_score(tokens, int(plain), self.scale_values()) if tokens else None
        return plain if weighted is None else weighted


def weighted_score(tokens: Any, verdict: int, scale: tuple[Any, ...]) -> float | None:
    """The probability-weighted mean over ``scale`` at the last token of the answer that
    is the verdict's digit: each value's probability among the top alternatives there,
    renormalised over the values of the scale. ``None`` when no such token is found or
    no alternative is on the scale."""
    if not isinstance(tokens, list):
        return None
    values = {str(v): v for v in scale}
    for token in reversed(tokens):
        if not isinstance(token, dict) or str(token.get("token", "")).strip() != str(verdict):
            continue
        weights: dict[int, float] = {}
        for top in token.get("top_logprobs") or []:
            text = str(top.get("token", "")).strip()
            logprob = top.get("logprob")
            if text in values and isinstance(logprob, int | float):
                weights[values[text]] = weights.get(values[text], 0.0) + math.exp(logprob)
        total = math.fsum(weights.values())
        if total <= 0:
            return None
        return math.fsum(v * w for v, w in weights.items()) / total
    return None


@register
class SemanticSimilarity(JudgeMetric):
    """``semantic-similarity``: the cosine similarity of the answer's embedding and the
    expected answer's (the best over several gold answers), from an OpenAI-compatible
    ``/embeddings`` model with ``role = "embedder"`` named by ``embedder``."""

    name = "semantic-similarity"
    tasks = _TEXT
    embeds: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Option]] = {
        "embedder": Option((str,)),
        "title": Option((str,)),
    }

    def check(self) -> None:
        if not self.settings["embedder"]:
            raise ValueError(
                "metric 'semantic-similarity' needs an 'embedder': the name of a model"
                ' with role = "embedder"'
            )

    @property
    def judge(self) -> str:
        return str(self.settings["embedder"])

    @cached_property
    def prompt(self) -> str:
        return "cosine similarity of embeddings, best over the gold answers"

    def texts(self, prediction: Any, expected: Any) -> list[str]:
        """What to embed: the answer, then each gold answer."""
        golds = expected if isinstance(expected, list) and expected else [expected]
        return [_as_text(prediction), *(_as_text(g) for g in golds)]

    def similarity(self, vectors: list[list[float]]) -> float:
        """The best cosine of the answer's vector (first) with a gold one."""
        import numpy as np

        answer, *golds = (np.asarray(v, dtype=float) for v in vectors)
        norms = [float(np.linalg.norm(answer) * np.linalg.norm(g)) for g in golds]
        if not golds or min(norms) == 0:
            raise JudgeAnswerError("an embedding is all zeros: no cosine")
        return max(float(answer @ g) / n for g, n in zip(golds, norms, strict=True))


def pairwise_outcome(first: float, second: float) -> float:
    """The case's score from the answer's preference in each order (+1 preferred, -1 not,
    0 tie): a win (1.0) only when both orders prefer it, a loss (0.0) only when both
    prefer the other, else a tie (0.5)."""
    if first > 0 and second > 0:
        return 1.0
    if first < 0 and second < 0:
        return 0.0
    return 0.5


def reduce_judgements(values: Sequence[float], reducer: str) -> tuple[float, float]:
    """The reduced score of repeated judgements (``mean``, or ``majority``: the most
    frequent value, ties to the one given first) and the agreement: the share of the
    judgements equal to the most frequent value."""
    counts = Counter(values)
    modal, top = max(counts.items(), key=lambda item: (item[1], -values.index(item[0])))
    score = modal if reducer == "majority" else math.fsum(values) / len(values)
    return score, top / len(values)


def _check_error_rates(metric: JudgeMetric) -> None:
    se, sp = metric.settings.get("sensitivity"), metric.settings.get("specificity")
    if se is None and sp is None:
        return
    where = f"metric {metric.name!r}"
    if se is None or sp is None:
        raise ValueError(f"{where}: give 'sensitivity' and 'specificity' together")
    if metric.settings.get("scale", "binary") != "binary":
        raise ValueError(f"{where}: 'sensitivity' and 'specificity' need scale = \"binary\"")
    if not (0 < se <= 1 and 0 < sp <= 1) or se + sp <= 1:
        raise ValueError(
            f"{where}: 'sensitivity' and 'specificity' must be in (0, 1] with a sum above 1"
            f" (a judge better than chance), got {se} and {sp}"
        )


def rogan_gladen(observed: float, sensitivity: float, specificity: float) -> float:
    """The true share of passing answers from the share a judge passed, given the judge's
    sensitivity and specificity (Rogan & Gladen 1978, Am. J. Epidemiol. 107:71-76),
    clipped to [0, 1]."""
    corrected = (observed + specificity - 1) / (sensitivity + specificity - 1)
    return min(1.0, max(0.0, corrected))


def describe_scale(values: tuple[Any, ...]) -> str:
    """The scale as the prompt shows it."""
    if values == BINARY:
        return '"pass" if the answer meets the criterion, "fail" if it does not'
    if all(isinstance(v, int) for v in values):
        return f"an integer from {values[0]} (worst) to {values[-1]} (best)"
    return "one of " + ", ".join(json.dumps(v) for v in values) + " (from worst to best)"


def verdict_score(values: tuple[Any, ...], verdict: Any) -> float:
    """The score of ``verdict`` on a scale: 0/1 for binary, the number for an integer
    scale, ``i / (k - 1)`` for labelled class ``i`` of ``k``."""
    if values == BINARY:
        return float(verdict == "pass")
    if all(isinstance(v, int) for v in values):
        return float(verdict)
    return values.index(verdict) / (len(values) - 1)


def _context(metric: JudgeMetric, inputs: Mapping[str, Any]) -> dict[str, str]:
    name = str(metric.settings["context"])
    if name not in inputs:
        # The adapter reports a missing template field as a bad request; name it here.
        raise KeyError(name)
    return {"context": _as_text(inputs[name])}


def _validated(answer: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """``answer`` decoded and checked against ``schema``. This runs on the event loop, as
    each judge answer comes in: with the schema's validator built once it takes 0.05 ms
    for a verdict and 0.3-0.8 ms for ``faithfulness`` with 8 claims (``jsonschema.validate``
    checked the schema itself on every call: 3-10 ms). Sending one answer to the scoring
    processes would cost the loop's process as much (0.4-0.5 ms of pickling and IPC), so
    it stays here; see docs/evaluation.md."""
    import jsonschema

    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise JudgeAnswerError(f"the judge's answer is not JSON ({exc.msg})") from None
    try:
        _validator(json.dumps(schema, sort_keys=True)).validate(answer)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise JudgeAnswerError(
            f"the judge's answer does not fit the schema at {where}: {exc.message}"
        ) from None
    assert isinstance(answer, dict)
    return answer


@functools.lru_cache(maxsize=64)  # a run's judge metrics have a handful of schemas
def _validator(schema: str) -> Any:
    """The validator of a judge answer's schema (given as canonical JSON), built once."""
    import jsonschema

    document = json.loads(schema)
    return jsonschema.validators.validator_for(document)(document)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
