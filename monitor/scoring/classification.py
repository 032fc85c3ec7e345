"""Classification metrics."""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.scoring.base import PerCaseMetric, Task, register


def normalise_label(value: Any) -> str:
    """Labels are compared as text so that ``1``, ``1.0`` and ``"1"`` are the same class,
    as they are when a JSON API and a CSV file describe the same dataset."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@register
class Accuracy(PerCaseMetric):
    """Share of cases whose predicted label equals the expected one."""

    name = "accuracy"
    tasks: ClassVar[frozenset[Task]] = frozenset({"classification"})
    binary = True

    def score_case(self, prediction: Any, expected: Any) -> float:
        return float(normalise_label(prediction) == normalise_label(expected))
