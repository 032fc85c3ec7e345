"""``/metrics`` reads the store once per change, not once per scrape."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.metrics.collector import StoreCollector
from monitor.metrics.snapshot import SnapshotCollector
from monitor.store import Store

T0_RUN = {
    "suite": "s",
    "model": "m",
    "trigger": "schedule",
    "dataset_sha256": "d",
    "config_hash": "c",
}


class Counting(Collector):
    """The real collector, counting how often it is asked."""

    def __init__(self, inner: Collector) -> None:
        self.inner, self.calls = inner, 0

    def collect(self) -> Iterable[GaugeMetricFamily]:
        self.calls += 1
        yield from self.inner.collect()  # type: ignore[misc]


def test_scrapes_without_writes_reuse_the_snapshot(store: Store) -> None:
    from datetime import UTC, datetime

    counting = Counting(StoreCollector(store, version=__version__))
    clock = [0.0]
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(counting, store, max_age=5.0, clock=lambda: clock[0]))
    first = generate_latest(registry)
    assert generate_latest(registry) == first and counting.calls == 1
    # A write: the next scrape reads the store again and shows it.
    store.runs.create_run(**T0_RUN, at=datetime(2024, 5, 1, tzinfo=UTC))
    second = generate_latest(registry)
    assert counting.calls == 2 and second != first
    assert b'suite="s"' in second
    assert generate_latest(registry) == second and counting.calls == 2
    # Without writes of its own (another replica's), at most max_age old.
    clock[0] += 5.0
    generate_latest(registry)
    assert counting.calls == 3
