"""Scoring: pure functions from predictions and expected values to metric values.

Importing this package registers every built-in metric.

May import: the shared vocabulary and the metric libraries (numpy, scikit-learn,
scipy, rouge-score, sacrebleu, jsonschema), each imported by the code that computes with
it. No I/O package or library.
"""

from __future__ import annotations

from monitor.scoring import (
    classification,
    generation,
    judged,
    ranking,
    regression,
    text,
    tools,
)
from monitor.scoring.base import (
    SCALES,
    TASKS,
    CorpusMetric,
    Metric,
    MetricScore,
    PerCaseMetric,
    Scale,
    Task,
    build_metric,
    get_metric,
    metric_class,
    metric_names,
    register,
    unknown_metric_message,
)

__all__ = [
    "SCALES",
    "TASKS",
    "CorpusMetric",
    "Metric",
    "MetricScore",
    "PerCaseMetric",
    "Scale",
    "Task",
    "build_metric",
    "classification",
    "generation",
    "get_metric",
    "judged",
    "metric_class",
    "metric_names",
    "ranking",
    "register",
    "regression",
    "text",
    "tools",
    "unknown_metric_message",
]
