"""``monitor_replica_info``: which replica this is and whether it leads.

Every replica exports its own sample, so in Prometheus ``sum(monitor_replica_info)``
counts the live replicas and ``monitor_replica_info{leader="true"}`` names the leader
(more than one for a moment only at a handover; none while no replica holds the lock).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["ReplicaCollector"]


class ReplicaState(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def leading(self) -> bool: ...


class ReplicaCollector(Collector):
    """One sample, read from ``state`` (the daemon's membership) at scrape time."""

    def __init__(self, state: ReplicaState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily(
            "monitor_replica",
            "This replica (host:pid) and whether it leads the scheduling.",
            value={"replica": self._state.name, "leader": str(self._state.leading).lower()},
        )
