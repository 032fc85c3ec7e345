"""Ranking and recommendation metrics, per case then averaged.

A prediction is a ranked list of item ids, best first. The expected value is the list of
relevant item ids, or a mapping of item id to graded relevance (NDCG uses the grades; the
other metrics count an item as relevant when its grade is positive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.scoring.base import Option, PerCaseMetric, Task, register

if TYPE_CHECKING:
    pass

_RANKING: frozenset[Task] = frozenset({"ranking"})


def relevance(expected: Any) -> dict[str, float]:
    """Item id to relevance grade."""
    if isinstance(expected, Mapping):
        return {str(k): float(v) for k, v in expected.items()}
    if isinstance(expected, str | int):
        return {str(expected): 1.0}
    return {str(item): 1.0 for item in expected or ()}


def ranked(prediction: Any) -> list[str]:
    """The predicted ranking as item ids, duplicates after the first dropped."""
    items = [prediction] if isinstance(prediction, str | int) else list(prediction or ())
    return list(dict.fromkeys(str(item) for item in items))


class _AtK(PerCaseMetric):
    tasks = _RANKING
    options: ClassVar[Mapping[str, Option]] = {"k": Option((int,), 10)}

    def check(self) -> None:
        if self.settings["k"] < 1:
            raise ValueError(f"option 'k' of metric {self.name!r}: must be positive")

    def _hits(self, prediction: Any, expected: Any) -> tuple[int, int]:
        relevant = {item for item, grade in relevance(expected).items() if grade > 0}
        top = ranked(prediction)[: self.settings["k"]]
        return sum(1 for item in top if item in relevant), len(relevant)


@register
class PrecisionAtK(_AtK):
    """Share of the top k predicted items that are relevant (divided by k)."""

    name = "precision@k"

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        hits, _ = self._hits(prediction, expected)
        k: int = self.settings["k"]
        return hits / k


@register
class RecallAtK(_AtK):
    """Share of the relevant items found in the top k (0 for a case with none)."""

    name = "recall@k"

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        hits, relevant = self._hits(prediction, expected)
        return hits / relevant if relevant else 0.0


@register
class MeanReciprocalRank(PerCaseMetric):
    """1 / rank of the first relevant item (0 when none is ranked), averaged."""

    name = "mrr"
    tasks = _RANKING

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        relevant = {item for item, grade in relevance(expected).items() if grade > 0}
        for rank, item in enumerate(ranked(prediction), start=1):
            if item in relevant:
                return 1 / rank
        return 0.0


@register
class NdcgAtK(_AtK):
    """NDCG@k with graded relevance, through scikit-learn's ``ndcg_score``.

    Relevant items the model did not rank are placed after every ranked item, so the ideal
    ordering still counts them; a case with no relevant item scores 0.
    """

    name = "ndcg@k"
    cpu_bound = True  # a scikit-learn call per case

    def score_case(self, prediction: Any, expected: Any, scores: Any = None) -> float:
        import numpy as np
        from sklearn.metrics import ndcg_score  # a second's import, paid when scoring

        grades = relevance(expected)
        k: int = self.settings["k"]
        items = ranked(prediction)[:k]
        if not any(g > 0 for g in grades.values()):
            return 0.0
        # Irrelevant fillers keep unranked relevant items below the cut-off, so they count
        # in the ideal ordering but never earn gain.
        fillers = [f"\0filler{i}" for i in range(k - len(items))]
        missing = [item for item in grades if item not in set(items)]
        universe = items + fillers + missing
        true = np.array([[grades.get(item, 0.0) for item in universe]])
        score = np.arange(len(universe), 0, -1, dtype=float)[np.newaxis, :]
        return float(ndcg_score(true, score, k=k))
