"""The narrow parts of the store a consumer is written against.

Each protocol names one domain attribute of :class:`~monitor.store.Store`; a consumer
combines the ones it uses (``class _Store(HasRuns, HasVerdicts, Protocol)``) and is typed
against that, never the whole store with its lifecycle (engine, migrations, close). A
``Store`` satisfies every one of them; a test may pass anything with those attributes.
"""

from __future__ import annotations

from typing import Protocol

from monitor.store.alert_store import AlertStore
from monitor.store.audit_store import AuditLog
from monitor.store.queue import RunQueue
from monitor.store.retention_store import RetentionStore
from monitor.store.run_store import RunStore
from monitor.store.stream_store import StreamStore
from monitor.store.verdict_store import VerdictStore
from monitor.store.window_queue import WindowQueue

__all__ = [
    "HasAlerts",
    "HasAudit",
    "HasQueue",
    "HasRetention",
    "HasRuns",
    "HasStreams",
    "HasVerdicts",
    "HasWindows",
    "RunsAndVerdicts",
]


class HasRuns(Protocol):
    @property
    def runs(self) -> RunStore: ...


class HasQueue(Protocol):
    @property
    def queue(self) -> RunQueue: ...


class HasStreams(Protocol):
    @property
    def streams(self) -> StreamStore: ...


class HasWindows(Protocol):
    @property
    def windows(self) -> WindowQueue: ...


class HasVerdicts(Protocol):
    @property
    def verdicts(self) -> VerdictStore: ...


class HasAlerts(Protocol):
    @property
    def alerts(self) -> AlertStore: ...


class HasAudit(Protocol):
    @property
    def audit(self) -> AuditLog: ...


class HasRetention(Protocol):
    @property
    def retention(self) -> RetentionStore: ...


class RunsAndVerdicts(HasRuns, HasVerdicts, Protocol):
    """Runs and their baselines and verdicts: what judging a run reads and writes."""
