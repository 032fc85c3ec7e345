"""Text metrics, with answer normalisation exactly as the official SQuAD v2.0 evaluation."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any, ClassVar

from monitor.scoring.base import PerCaseMetric, Task, register

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


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


@register
class ExactMatch(PerCaseMetric):
    """1 when the normalised prediction equals any normalised gold answer, else 0."""

    name = "exact-match"
    tasks: ClassVar[frozenset[Task]] = frozenset({"text", "classification"})
    binary = True

    def score_case(self, prediction: Any, expected: Any) -> float:
        predicted = normalize_answer("" if prediction is None else str(prediction))
        return float(any(normalize_answer(g) == predicted for g in gold_answers(expected)))
