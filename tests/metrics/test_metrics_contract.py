"""The metrics contract: what /metrics exports is exactly what docs/metrics.md lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alerts import Phase, Transition
from monitor.config import parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.records import (
    CaseResult,
    FairnessValue,
    MetricComparison,
    MetricValue,
    NewDriftReport,
    RunOperations,
    RunStatus,
    WindowPerformance,
)
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


def exported(store: Store, tmp_path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """What the daemon's own registry exports: the store collector and the runner's
    instruments, as the daemon composes them."""
    dataset = tmp_path / "cases.jsonl"
    dataset.write_text('{"x": 1, "y": "a"}\n')
    suite = {"name": "s", "dataset": str(dataset), "task": "classification", "expected": "y"}
    (tmp_path / "reference.csv").write_text("ts,x\n2024-05-01T00:00:00Z,1.0\n")
    stream = {
        "name": "s",
        "timestamp": "ts",
        "numerical": ["x"],
        "reference": {"file": "reference.csv"},
        "window": {"rows": 100},
    }
    config = parse_config(
        {
            "models": [{"name": "m", "adapter": "http", "url": "http://127.0.0.1:1/p"}],
            "suites": [{**suite, "metrics": ["accuracy"], "models": ["m"]}],
            "streams": [stream],
        },
        base_dir=tmp_path,
    )
    registry = Daemon(config, store=store).registry
    families = {}
    for family in registry.collect():
        # A histogram's bucket label "le" belongs to the type, not to the contract.
        labels = frozenset(label for s in family.samples for label in s.labels if label != "le")
        families[family.name + SUFFIX.get(family.type, "")] = (family.type, labels)
    return families


def seed_every_kind_of_run(store: Store) -> None:
    # The succeeded run finishes last, with tokens and a cost.
    order = [
        RunStatus.QUEUED,
        RunStatus.RUNNING,
        RunStatus.FAILED,
        RunStatus.INTERRUPTED,
        RunStatus.SUCCEEDED,
    ]
    assert sorted(order) == sorted(RunStatus)
    operations = RunOperations(0.1, 0.2, 0.3, 0.4, 0.0, 5.0, 120, 30, 0.002, "USD")
    for minute, status in enumerate(order):
        at = T0 + timedelta(minutes=minute)
        queued = status is RunStatus.QUEUED
        run_id = store.runs.create_run(
            suite="s",
            model="m",
            trigger="schedule",
            dataset_sha256="d",
            config_hash="c",
            at=at,
            status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
        )
        if status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            succeeded = status == "succeeded"
            store.runs.finish_run(
                run_id,
                status=status,
                at=at + timedelta(seconds=1),
                cases=[CaseResult("c1", {}, "a", prediction="a")],
                metrics=[MetricValue("accuracy", 0.9, 0.8, 0.95, 10)] if succeeded else [],
                operations=operations if succeeded else None,
                fairness=[FAIRNESS] if succeeded else [],
            )


FAIRNESS = FairnessValue("gender", "demographic_parity_difference", 0.1, 0.05, 0.2, 10)


def seed_a_verdict(store: Store) -> None:
    base = store.runs.list_runs(status=RunStatus.SUCCEEDED, limit=1)[0]
    store.verdicts.promote_baseline(base.id, by="test", reason="", at=T0)
    row = MetricComparison(
        "accuracy",
        "",
        "regressed",
        "mcnemar-exact",
        10,
        0.9,
        0.7,
        -0.2,
        -0.4,
        -0.05,
        0.01,
        0.005,
        0.0,
        "dropped",
    )
    store.verdicts.add_verdict(
        run_id=base.id,
        baseline_run_id=base.id,
        suite="s",
        model="m",
        outcome="regressed",
        reason="r",
        at=T0,
        dataset_changed=False,
        metrics=[row],
        changes=[],
    )


def seed_an_alert(store: Store) -> None:
    from tests.store.test_store_alerts import message, state

    store.alerts.apply_alert_transitions(
        [Transition(state(), Phase.PENDING, "firing")], [message("m1")]
    )


def seed_a_stream(store: Store) -> None:
    store.streams.append_batch("s", received_at=T0, first_ts=T0, last_ts=T0, n_rows=3, payload=b"x")
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
    shadow = {"kind": "categorical", "status": "ok", "n_rows": 500, "n_pairs": 500}
    shadow |= {"confidence": 0.95, "agreement": 0.9}
    shadow["divergence"] = {"measure": "disagreement_share", "value": 0.1, "lower": 0.08}
    shadow["divergence"] |= {"upper": 0.13, "p_value": None, "interval": "wilson"}
    report_id = store.streams.add_drift_report(
        NewDriftReport(
            *("s", "w1", T0, T0, T0, "ok", 500, 1.0, True, (column,)),
            segments=(
                {"column": "c", "segment": "a", "status": "ok", "n_rows": 400}
                | {"drift_share": 1.0, "dataset_drifted": True, "largest": True},
            ),
            shadow=shadow,
        )
    )
    metric = {"metric": "accuracy", "value": 0.8, "lower": 0.75, "upper": 0.85}
    judged = {"metric": "accuracy", "reference": 0.9, "current": 0.8, "delta": -0.1}
    judged |= {"test": "fisher-exact", "p_value": 0.001, "worse": True}
    store.streams.save_performance(
        WindowPerformance(
            *("s", "w1", T0, T0, report_id, "final", "ok", 500, 400, (metric,), (judged,)),
            *(True, "reference", T0, T0, "digest", 0, None, T0, T0),
            groups={
                "segments": [
                    {"column": "c", "segment": "a", "status": "ok", "n_labelled": 9}
                    | {"metrics": [metric]}
                ],
                "gaps": [
                    {"column": "c", "metric": "accuracy", "gap": 0.1, "lower": 0.02, "upper": 0.18}
                ],
                "fairness": [
                    {"groups": "c", "measure": "demographic_parity_difference", "value": 0.1}
                    | {"lower": 0.05, "upper": 0.2}
                ],
            },
        )
    )


def test_exported_metrics_match_the_documented_contract(store: Store, tmp_path: Path) -> None:
    seed_every_kind_of_run(store)
    seed_a_verdict(store)
    seed_an_alert(store)
    seed_a_stream(store)
    contract = documented()
    assert contract, "docs/metrics.md has no metric table"
    assert exported(store, tmp_path) == contract


def test_metric_names_follow_prometheus_conventions() -> None:
    for name, (kind, labels) in documented().items():
        assert name.startswith("monitor_")
        assert name.endswith("_total") == (kind == "counter"), name
        assert not any(word in name for word in ("_ms", "_milliseconds", "_minutes")), name
        assert "le" not in labels and "quantile" not in labels
