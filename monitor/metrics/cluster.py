"""``monitor_replica_info``: which replica this is and whether it leads.

Every replica exports its own sample, so in Prometheus ``sum(monitor_replica_info)``
counts the live replicas and ``monitor_replica_info{leader="true"}`` names the leader
(more than one for a moment only at a handover; none while no replica holds the lock).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
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
        family = GaugeMetricFamily(
            "monitor_replica_info",
            "This replica (host:pid) and whether it leads the scheduling (always 1).",
            labels=["replica", "leader"],
        )
        family.add_metric([self._state.name, str(self._state.leading).lower()], 1.0)
        yield family
