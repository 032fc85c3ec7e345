"""Scoring: pure functions from predictions and expected values to metric values.

Importing this package registers every built-in metric.
"""

from __future__ import annotations

from monitor.scoring import classification, text
from monitor.scoring.base import (
    TASKS,
    Metric,
    MetricScore,
    PerCaseMetric,
    Task,
    get_metric,
    metric_names,
    register,
    unknown_metric_message,
)

__all__ = [
    "TASKS",
    "Metric",
    "MetricScore",
    "PerCaseMetric",
    "Task",
    "classification",
    "get_metric",
    "metric_names",
    "register",
    "text",
    "unknown_metric_message",
]
