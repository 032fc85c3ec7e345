"""The metrics contract: what /metrics exports is exactly what docs/metrics.md lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.alerts import Phase, Transition
from monitor.exporter import StoreCollector
from monitor.records import MetricValue, NewDriftReport, RunStatus
from monitor.store import Store
from tests.servers import ROOT

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
ROW = re.compile(r"^\| `(monitor_[a-z_]+)` \| (\w+)[^|]*\|([^|]*)\|")
SUFFIX = {"counter": "_total", "info": "_info"}


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels) from the table in docs/metrics.md."""
    rows = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if match := ROW.match(line):
            labels = frozenset(re.findall(r"`(\w+)`", match.group(3)))
            rows[match.group(1)] = (match.group(2), labels)
    return rows


def exported(store: Store) -> dict[str, tuple[str, frozenset[str]]]:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, version=__version__))
    families = {}
    for family in registry.collect():
        labels = frozenset(label for s in family.samples for label in s.labels)
        families[family.name + SUFFIX.get(family.type, "")] = (family.type, labels)
    return families


def seed_every_kind_of_run(store: Store) -> None:
    for minute, status in enumerate(RunStatus):
        at = T0 + timedelta(minutes=minute)
        queued = status is RunStatus.QUEUED
        run_id = store.create_run(
            suite="s",
            model="m",
            trigger="schedule",
            dataset_sha256="d",
            config_hash="c",
            at=at,
            status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
        )
        if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            metrics = [MetricValue("accuracy", 0.9, 0.8, 0.95, 10)] if status == "succeeded" else []
            store.finish_run(run_id, status=status, at=at + timedelta(seconds=1), metrics=metrics)


def seed_an_alert(store: Store) -> None:
    from tests.alerts.test_alert_store import message, state

    store.apply_alert_transitions([Transition(state(), Phase.PENDING, "firing")], [message("m1")])


def seed_a_stream(store: Store) -> None:
    store.append_batch("s", received_at=T0, first_ts=T0, last_ts=T0, n_rows=3, payload=b"x")
    results = [
        {
            "method": "ks",
            "statistic": 0.25,
            "p_value": 0.001,
            "p_value_adjusted": 0.002,
            "threshold": 0.05,
            "drifted": True,
            "kind": "p_value",
        },
        {
            "method": "psi",
            "statistic": 0.3,
            "p_value": None,
            "threshold": 0.1,
            "drifted": True,
            "kind": "distance",
        },
    ]
    column = {
        "column": "x",
        "kind": "numerical",
        "drifted": True,
        "results": results,
        "quality": {"missing_share": 0.0, "out_of_range_share": 0.0, "new_categories": []},
    }
    store.add_drift_report(NewDriftReport("s", "w1", T0, T0, T0, "ok", 500, 1.0, True, (column,)))


def test_exported_metrics_match_the_documented_contract(store: Store) -> None:
    seed_every_kind_of_run(store)
    seed_an_alert(store)
    seed_a_stream(store)
    contract = documented()
    assert contract, "docs/metrics.md has no metric table"
    assert exported(store) == contract


def test_metric_names_follow_prometheus_conventions() -> None:
    for name, (kind, labels) in documented().items():
        assert name.startswith("monitor_")
        assert name.endswith("_total") == (kind == "counter"), name
        assert not any(word in name for word in ("_ms", "_milliseconds", "_minutes")), name
        assert "le" not in labels and "quantile" not in labels
