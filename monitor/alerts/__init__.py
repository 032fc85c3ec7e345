"""Alerting: rules over events, a pure state machine, and a durable outbox to sinks.

``events`` and ``rules`` and ``engine`` are pure (no I/O); ``payload`` builds what sinks
send; ``service`` ties the engine to the store; ``delivery`` drains the outbox.
"""

from __future__ import annotations

from monitor.alerts.engine import AlertState, Phase, Transition, evaluate, fingerprint
from monitor.alerts.events import (
    ColumnDrift,
    DriftReportReady,
    Event,
    MetricVerdict,
    RunFinished,
    StreamActivity,
    SuiteActivity,
    Tick,
    VerdictReady,
)

__all__ = [
    "AlertState",
    "ColumnDrift",
    "DriftReportReady",
    "Event",
    "MetricVerdict",
    "Phase",
    "RunFinished",
    "StreamActivity",
    "SuiteActivity",
    "Tick",
    "Transition",
    "VerdictReady",
    "evaluate",
    "fingerprint",
]
