"""The metric interface and registry.

A metric turns predictions and expected values into one number with a confidence
interval. Per-case metrics also keep each case's score, which is what later comparison
against a baseline pairs on. Adding a metric means adding a module that calls ``register``.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from monitor.scoring.intervals import mean_interval

Task = Literal["classification", "regression", "text"]
TASKS: tuple[Task, ...] = ("classification", "regression", "text")


@dataclass(frozen=True, slots=True)
class MetricScore:
    """A metric over a set of cases: the value, a 95% interval, and per-case scores when the
    metric decomposes over cases."""

    value: float
    lower: float | None
    upper: float | None
    per_case: tuple[float, ...] | None = None


class Metric(ABC):
    """A named way to score a task's predictions against expected values."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[Task]]

    @abstractmethod
    def compute(self, predictions: Sequence[Any], expected: Sequence[Any]) -> MetricScore:
        """Score ``predictions`` against ``expected`` (same length, at least one case)."""


class PerCaseMetric(Metric):
    """A metric that is the mean of a score given to each case on its own."""

    binary: ClassVar[bool] = False

    @abstractmethod
    def score_case(self, prediction: Any, expected: Any) -> float:
        """The score of one case."""

    def compute(self, predictions: Sequence[Any], expected: Sequence[Any]) -> MetricScore:
        if len(predictions) != len(expected):
            raise ValueError(
                f"{self.name}: {len(predictions)} predictions for {len(expected)} expected values"
            )
        scores = tuple(self.score_case(p, e) for p, e in zip(predictions, expected, strict=True))
        value, lower, upper = mean_interval(scores, binary=self.binary)
        return MetricScore(value, lower, upper, scores)


_REGISTRY: dict[str, type[Metric]] = {}


def register(metric: type[Metric]) -> type[Metric]:
    """Class decorator: make ``metric`` available under its ``name``."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is registered twice")
    _REGISTRY[metric.name] = metric
    return metric


def metric_names() -> list[str]:
    """Every registered metric name, sorted."""
    return sorted(_REGISTRY)


def unknown_metric_message(name: str) -> str:
    """The error text for a metric name that is not registered, with a suggestion."""
    close = difflib.get_close_matches(name, _REGISTRY, n=1, cutoff=0.6)
    hint = (
        f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(metric_names())}"
    )
    return f"unknown metric {name!r}; {hint}"


def get_metric(name: str) -> Metric:
    """An instance of the metric called ``name``; ``KeyError`` with a suggestion otherwise."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise KeyError(unknown_metric_message(name)) from None
