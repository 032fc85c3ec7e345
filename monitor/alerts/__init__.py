"""Alerting's pure core: rules over events and the alert state machine.

``events`` and ``rules`` and ``engine`` are pure (no I/O); ``records`` are the outbox's
and the operators' plain records; ``payload`` builds what sinks send. The store keeps these
records, ``monitor.notify`` runs the engine against the store and drains the outbox into
``monitor.sinks``.

May import: the shared vocabulary and ``config``. Never an I/O package (``store``,
``sinks``, ``notify``, ``adapters``, ``api``, ``daemon``) or an I/O library.
"""

from __future__ import annotations

from monitor.alerts.engine import AlertState, Phase, Transition, evaluate, fingerprint
from monitor.alerts.events import (
    ColumnDrift,
    DivergenceReady,
    DriftReportReady,
    Event,
    MetricJudged,
    MetricVerdict,
    PerformanceReady,
    RunFinished,
    StreamActivity,
    SuiteActivity,
    Tick,
    VerdictReady,
)

__all__ = [
    "AlertState",
    "ColumnDrift",
    "DivergenceReady",
    "DriftReportReady",
    "Event",
    "MetricJudged",
    "MetricVerdict",
    "PerformanceReady",
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
