"""The Prometheus collector: every value is read from the store at scrape time.

Because nothing is held in process memory, a restart loses no value and every replica
exports the same numbers. ``docs/metrics.md`` is the contract for the names below.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from monitor.store import Store

logger = logging.getLogger(__name__)

PREFIX = "monitor"
PAIR = ["suite", "model"]


class StoreCollector(Collector):
    """Reads runs and scores from ``store`` for each scrape."""

    def __init__(self, store: Store, *, version: str) -> None:
        self._store = store
        self._version = version

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Nothing to describe up front: registering must not query the store.
        return []

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        yield InfoMetricFamily(
            f"{PREFIX}_build",
            "Version of the monitor daemon and of the Python running it.",
            value={"version": self._version, "python_version": platform.python_version()},
        )
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 if the store answered this scrape, else 0.")
        try:
            families = [*self._run_families(), *self._score_families(), *self._alert_families()]
        except Exception as exc:  # a scrape must answer even when the store does not
            logger.warning("scrape: store unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _run_families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        runs = CounterMetricFamily(
            f"{PREFIX}_runs", "Finished and running runs by status.", labels=[*PAIR, "status"]
        )
        last = _gauge("last_run_timestamp_seconds", "Unix time the latest run finished.", PAIR)
        success = _gauge(
            "last_success_timestamp_seconds", "Unix time the latest succeeded run finished.", PAIR
        )
        duration = _gauge("last_run_duration_seconds", "Wall time of the latest run.", PAIR)
        for summary in self._store.run_summaries():
            pair = [summary.suite, summary.model]
            for status, count in summary.counts.items():
                runs.add_metric([*pair, status], count)
            _add(last, pair, _timestamp(summary.last_finished_at))
            _add(success, pair, _timestamp(summary.last_success_at))
            _add(duration, pair, summary.last_duration_seconds)
        return [runs, last, success, duration]

    def _score_families(self) -> list[GaugeMetricFamily]:
        labels = [*PAIR, "metric"]
        score = _gauge("eval_score", "Latest succeeded run's score per metric.", labels)
        lower = _gauge("eval_score_lower", "Lower bound of its 95% confidence interval.", labels)
        upper = _gauge("eval_score_upper", "Upper bound of its 95% confidence interval.", labels)
        for s in self._store.latest_scores():
            key = [s.suite, s.model, s.metric]
            score.add_metric(key, s.value)
            _add(lower, key, s.lower)
            _add(upper, key, s.upper)
        return [score, lower, upper]

    def _alert_families(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        alerts = GaugeMetricFamily(
            f"{PREFIX}_alerts",
            "Alerts by rule, severity and state (pending, firing, resolved, inactive).",
            labels=["rule", "severity", "state"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        for state in self._store.alert_states():
            key = (state.rule, state.severity, state.phase.value)
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            alerts.add_metric(list(key), count)
        stats = self._store.outbox_stats()
        backlog = GaugeMetricFamily(
            f"{PREFIX}_alert_outbox_backlog",
            "Notifications waiting in the outbox for delivery.",
        )
        backlog.add_metric([], stats.by_status.get("pending", 0))
        dead = GaugeMetricFamily(
            f"{PREFIX}_alert_dead_letters",
            "Notifications given up on after max_attempts (see GET /v1/alerts).",
        )
        dead.add_metric([], stats.by_status.get("dead", 0))
        deliveries = CounterMetricFamily(
            f"{PREFIX}_alert_deliveries",
            "Delivery attempts by outcome: delivered, failed (retried or not), dead.",
            labels=["outcome"],
        )
        deliveries.add_metric(["delivered"], stats.by_status.get("delivered", 0))
        deliveries.add_metric(["failed"], stats.failed_attempts)
        deliveries.add_metric(["dead"], stats.by_status.get("dead", 0))
        return [alerts, backlog, dead, deliveries]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    """Add a sample unless the value is unknown: an absent series, never a fake zero."""
    if value is not None:
        family.add_metric(labels, value)


def _timestamp(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()
