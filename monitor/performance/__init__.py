"""Realized performance: production predictions scored against labels that arrived
later, judged against the reference's performance.

Pure computation: numpy, scipy and the suites' scoring code; no I/O package or library.
``measure`` scores one window (or the reference), ``judge`` compares a window with the
reference's performance by a two-sample test, ``judge_target`` with configured targets.
"""

from __future__ import annotations

from monitor.performance.judge import MetricJudgement, judge, judge_target
from monitor.performance.realized import (
    MetricResult,
    Performance,
    measure,
)

__all__ = [
    "MetricJudgement",
    "MetricResult",
    "Performance",
    "judge",
    "judge_target",
    "measure",
]
