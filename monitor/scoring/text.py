"""Text metrics: SQuAD v2.0 exact match and token F1, and checks on the answer's form.

``exact-match`` and ``f1-score`` follow the official SQuAD v2.0 evaluation script exactly:
answers are lower-cased, stripped of ASCII punctuation and the articles a/an/the, and
whitespace-collapsed; F1 is the multiset overlap of tokens; a case scores the best over its
gold answers; a case without an answer is judged against the empty string, so only an empty
prediction is right.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from monitor.scoring.base import Option, PerCaseMetric, Task, register

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
_TEXT: frozenset[Task] = frozenset({"text"})


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace
    (the order the official ``evaluate-v2.0.py`` applies them in)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def gold_answers(expected: Any) -> list[str]:
    """The gold answers of a case. As in SQuAD v2, a case with no answer is judged against
    the empty string, so only an empty prediction is right."""
    if expected is None:
        return [""]
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, Sequence):
        answers = [str(a) for a in expected if normalize_answer(str(a))]
        return answers or [""]
    return [str(expected)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def token_f1(gold: str, prediction: str) -> float:
    """SQuAD's ``compute_f1``: multiset token overlap of two normalised answers."""
    gold_tokens = normalize_answer(gold).split() if gold else []
    predicted = normalize_answer(prediction).split() if prediction else []
    if not gold_tokens or not predicted:
        return float(gold_tokens == predicted)
    same = sum((Counter(gold_tokens) & Counter(predicted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


@register
class ExactMatch(PerCaseMetric):
    """1 when the normalised prediction equals any normalised gold answer, else 0."""

    name = "exact-match"
    tasks: ClassVar[frozenset[Task]] = frozenset({"text", "classification"})
    binary = True

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        predicted = normalize_answer(_text(prediction))
        return float(any(normalize_answer(g) == predicted for g in gold_answers(expected)))


@register
class TokenF1(PerCaseMetric):
    """SQuAD v2.0 token F1, the maximum over the gold answers."""

    name = "f1-score"
    tasks = _TEXT

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        return max(token_f1(g, _text(prediction)) for g in gold_answers(expected))


@register
class Contains(PerCaseMetric):
    """1 when any gold answer appears in the prediction (case-insensitive unless
    ``ignore_case = false``), else 0."""

    name = "contains"
    tasks = _TEXT
    binary = True
    options: ClassVar[Mapping[str, Option]] = {"ignore_case": Option((bool,), True)}

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        golds = [expected] if isinstance(expected, str) else list(expected or [])
        text = _text(prediction)
        if self.settings["ignore_case"]:
            text, golds = text.casefold(), [str(g).casefold() for g in golds]
        return float(any(str(g) in text for g in golds))


@register
class Regex(PerCaseMetric):
    """1 when ``pattern`` (Python ``re`` syntax) matches anywhere in the prediction."""

    name = "regex"
    tasks = _TEXT
    binary = True
    options: ClassVar[Mapping[str, Option]] = {"pattern": Option((str,))}

    def check(self) -> None:
        if self.settings["pattern"] is None:
            raise ValueError("metric 'regex' needs a 'pattern' option")
        try:
            self._pattern = re.compile(self.settings["pattern"])
        except re.error as exc:
            raise ValueError(f"option 'pattern' of metric 'regex': invalid: {exc}") from None

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        return float(self._pattern.search(_text(prediction)) is not None)


def _parse_json(prediction: Any) -> tuple[bool, Any]:
    if not isinstance(prediction, str):
        return prediction is not None, prediction
    try:
        return True, json.loads(prediction)
    except ValueError:
        return False, None


@register
class JsonValid(PerCaseMetric):
    """1 when the prediction is a JSON document (or already structured data)."""

    name = "json-valid"
    tasks = _TEXT
    binary = True

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        return float(_parse_json(prediction)[0])


@register
class JsonSchema(PerCaseMetric):
    """1 when the prediction is JSON that validates against ``schema`` (JSON Schema,
    given inline as a table), else 0."""

    name = "json-schema"
    tasks = _TEXT
    binary = True
    cpu_bound = True
    options: ClassVar[Mapping[str, Option]] = {"schema": Option((dict,))}

    def check(self) -> None:
        import jsonschema

        schema = self.settings["schema"]
        if schema is None:
            raise ValueError("metric 'json-schema' needs a 'schema' option (an inline table)")
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"option 'schema' of metric 'json-schema': {exc.message}") from None
        self._validator = cls(schema)

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        ok, document = _parse_json(prediction)
        return float(ok and self._validator.is_valid(document))
