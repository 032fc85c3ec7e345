"""The pure alert engine: every rule kind, ``for``, repeats, resolution, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.alerts import (
    AlertState,
    ColumnDrift,
    DriftReportReady,
    Event,
    MetricVerdict,
    Phase,
    RunFinished,
    StreamActivity,
    SuiteActivity,
    Tick,
    Transition,
    VerdictReady,
    evaluate,
    fingerprint,
)
from monitor.config.alerts import RuleConfig
from monitor.records import MetricValue, Run, RunStatus

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def rule(**fields: Any) -> RuleConfig:
    return RuleConfig.model_validate({"name": "r", **fields})


def run(
    at: datetime = T0,
    *,
    status: RunStatus = RunStatus.SUCCEEDED,
    metrics: dict[str, float] | None = None,
    n_cases: int = 10,
    n_errors: int = 0,
    suite: str = "qa",
    model: str = "prod",
) -> RunFinished:
    values = tuple(MetricValue(k, v, v - 0.1, v + 0.1, n_cases) for k, v in (metrics or {}).items())
    return RunFinished(
        Run(
            id=7,
            suite=suite,
            model=model,
            status=status,
            trigger="schedule",
            created_at=at,
            started_at=at,
            finished_at=at,
            dataset_sha256="d",
            config_hash="c",
            n_cases=n_cases,
            n_errors=n_errors,
            error="boom" if status is RunStatus.FAILED else None,
            metrics=values,
        )
    )


class Machine:
    """Feeds events through ``evaluate`` and keeps the states, as the store would."""

    def __init__(self, *rules: RuleConfig) -> None:
        self.rules = rules
        self.states: dict[str, AlertState] = {}
        self.sent: list[tuple[str, str]] = []

    def feed(self, event: Event) -> list[Transition]:
        transitions = evaluate(self.rules, self.states, event)
        for t in transitions:
            self.states[t.state.fingerprint] = t.state
            if t.notify:
                self.sent.append((t.state.rule, t.notify))
        return transitions

    def phase(self) -> Phase:
        """The one alert's phase; never evaluated as active counts as inactive."""
        if not self.states:
            return Phase.INACTIVE
        (state,) = self.states.values()
        return state.phase


def test_threshold_fires_at_once_and_resolves() -> None:
    m = Machine(rule(kind="threshold", metric="f1", op="<", value=0.85))
    m.feed(run(metrics={"f1": 0.9}))
    assert m.sent == [] and m.phase() is Phase.INACTIVE

    m.feed(run(T0 + timedelta(minutes=1), metrics={"f1": 0.8}))
    assert m.phase() is Phase.FIRING and m.sent == [("r", "firing")]
    state = next(iter(m.states.values()))
    assert state.value == 0.8 and state.threshold == 0.85 and state.links == {"run": "/v1/runs/7"}

    m.feed(run(T0 + timedelta(minutes=2), metrics={"f1": 0.9}))
    assert m.phase() is Phase.RESOLVED and m.sent[-1] == ("r", "resolved")


def test_for_counts_consecutive_evaluations() -> None:
    m = Machine(rule(kind="threshold", metric="f1", op="<", value=0.85, **{"for": 3}))
    for i in range(2):
        m.feed(run(T0 + timedelta(minutes=i), metrics={"f1": 0.5}))
    assert m.phase() is Phase.PENDING and m.sent == []
    m.feed(run(T0 + timedelta(minutes=2), metrics={"f1": 0.9}))  # streak broken
    assert m.phase() is Phase.INACTIVE and m.sent == []
    for i in range(3):
        m.feed(run(T0 + timedelta(minutes=10 + i), metrics={"f1": 0.5}))
    assert m.phase() is Phase.FIRING and m.sent == [("r", "firing")]


def test_for_duration_waits_for_time_not_count() -> None:
    m = Machine(rule(kind="run_failed", **{"for": "10m"}))
    m.feed(run(T0, status=RunStatus.FAILED))
    m.feed(run(T0 + timedelta(minutes=9), status=RunStatus.FAILED))
    assert m.phase() is Phase.PENDING
    m.feed(run(T0 + timedelta(minutes=10), status=RunStatus.FAILED))
    assert m.phase() is Phase.FIRING and m.sent == [("r", "firing")]


def test_repeat_interval_renotifies_on_events_and_ticks() -> None:
    m = Machine(rule(kind="run_failed", repeat_interval="1h"))
    m.feed(run(T0, status=RunStatus.FAILED))
    m.feed(run(T0 + timedelta(minutes=30), status=RunStatus.FAILED))
    assert m.sent == [("r", "firing")]
    m.feed(run(T0 + timedelta(minutes=61), status=RunStatus.FAILED))
    assert m.sent == [("r", "firing")] * 2
    m.feed(Tick(now=T0 + timedelta(minutes=130), since=T0))
    assert m.sent == [("r", "firing")] * 3
    m.feed(Tick(now=T0 + timedelta(minutes=140), since=T0))
    assert len(m.sent) == 3


def test_no_repeat_without_repeat_interval_and_quiet_resolution() -> None:
    m = Machine(rule(kind="run_failed", send_resolved=False))
    m.feed(run(T0, status=RunStatus.FAILED))
    m.feed(Tick(now=T0 + timedelta(days=3), since=T0))
    m.feed(run(T0 + timedelta(days=3), status=RunStatus.SUCCEEDED))
    assert m.phase() is Phase.RESOLVED and m.sent == [("r", "firing")]


def test_refiring_after_resolution_notifies_again() -> None:
    m = Machine(rule(kind="run_failed"))
    for i, status in enumerate([RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.FAILED]):
        m.feed(run(T0 + timedelta(minutes=i), status=status))
    assert m.sent == [("r", "firing"), ("r", "resolved"), ("r", "firing")]


def test_error_rate_and_latency_rules() -> None:
    errors = Machine(rule(kind="error_rate", value=0.2))
    errors.feed(run(n_cases=10, n_errors=2))
    assert errors.phase() is Phase.INACTIVE
    errors.feed(run(n_cases=10, n_errors=3))
    assert errors.phase() is Phase.FIRING

    latency = Machine(rule(kind="latency", value=0.5))
    latency.feed(run(metrics={"f1": 0.9}))  # no latency metric yet: nothing to say
    assert latency.states == {}
    latency.feed(run(metrics={"latency-p95": 0.7}))
    assert latency.phase() is Phase.FIRING


def test_threshold_ignores_runs_without_the_metric_and_other_suites() -> None:
    m = Machine(rule(kind="threshold", suite="qa", metric="f1", op="<", value=0.85))
    m.feed(run(metrics={"f1": 0.5}))
    m.feed(run(status=RunStatus.FAILED))  # no metrics: keeps firing, not resolved
    m.feed(run(suite="other", metrics={"f1": 0.99}))
    assert m.phase() is Phase.FIRING and m.sent == [("r", "firing")]


def test_one_alert_per_suite_model_by_fingerprint() -> None:
    m = Machine(rule(kind="run_failed"))
    m.feed(run(status=RunStatus.FAILED, model="a"))
    m.feed(run(status=RunStatus.FAILED, model="b"))
    assert len(m.states) == 2 and len(m.sent) == 2
    labels = {"alertname": "r", "severity": "warning", "rule_kind": "run_failed"}
    assert fingerprint({**labels, "suite": "qa", "model": "a"}) in m.states


def test_fingerprint_ignores_label_order() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def verdict(*outcomes: tuple[str, str, float]) -> VerdictReady:
    return VerdictReady(
        suite="qa",
        model="prod",
        run_id=7,
        verdict_id=3,
        at=T0,
        metrics=tuple(
            MetricVerdict(name, outcome, 0.9, 0.9 + delta, delta, delta - 0.01, delta + 0.01, 0.01)
            for name, outcome, delta in outcomes
        ),
        degraded_cases=("c1", "c2"),
    )


def test_regression_rule_on_verdicts() -> None:
    m = Machine(rule(kind="regression", metrics=["f1"]))
    m.feed(verdict(("accuracy", "regressed", -0.1), ("f1", "pass", 0.0)))
    assert m.sent == []
    m.feed(verdict(("f1", "regressed", -0.05)))
    state = next(iter(m.states.values()))
    assert state.phase is Phase.FIRING and state.value == pytest.approx(-0.05)
    assert state.links == {"run": "/v1/runs/7", "verdict": "/v1/verdicts/3"}
    assert state.details["degraded_cases"] == ["c1", "c2"]
    assert "0.9 -> 0.85" in state.summary


def drift(dataset: bool, *drifted: str) -> DriftReportReady:
    columns = tuple(ColumnDrift(c, "ks", 0.01, 0.05, c in drifted) for c in ("age", "income"))
    return DriftReportReady("orders", 11, T0, dataset, len(drifted) / 2, columns)


@pytest.mark.parametrize(
    ("columns", "report", "fires"),
    [
        pytest.param((), drift(True, "age", "income"), True, id="dataset-drift"),
        pytest.param((), drift(False, "age"), False, id="no-dataset-drift"),
        pytest.param(("income",), drift(False, "income"), True, id="named-column-drifted"),
        pytest.param(("income",), drift(True, "age"), False, id="other-column-drifted"),
    ],
)
def test_drift_rule(columns: tuple[str, ...], report: DriftReportReady, fires: bool) -> None:
    m = Machine(rule(kind="drift", stream="orders", columns=list(columns)))
    m.feed(report)
    assert (m.sent == [("r", "firing")]) is fires


def test_stale_suite_and_stream() -> None:
    m = Machine(rule(kind="stale", after="1h"))
    last = SuiteActivity("qa", "prod", T0)
    m.feed(Tick(now=T0 + timedelta(minutes=59), since=T0, suites=(last,)))
    assert m.sent == []
    m.feed(Tick(now=T0 + timedelta(minutes=61), since=T0, suites=(last,)))
    assert m.phase() is Phase.FIRING
    fresh = SuiteActivity("qa", "prod", T0 + timedelta(minutes=62))
    m.feed(Tick(now=T0 + timedelta(minutes=63), since=T0, suites=(fresh,)))
    assert m.sent == [("r", "firing"), ("r", "resolved")]

    never = Machine(rule(kind="stale", after="1h"))
    never.feed(
        Tick(now=T0 + timedelta(minutes=30), since=T0, suites=(SuiteActivity("a", "b", None),))
    )
    assert never.sent == []
    streams = Machine(rule(kind="stale", stream="orders", after="5m"))
    streams.feed(Tick(T0 + timedelta(minutes=6), T0, streams=(StreamActivity("orders", T0),)))
    assert streams.sent == [("r", "firing")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"kind": "threshold", "metric": "f1"}, "needs 'op', 'value'", id="missing"),
        pytest.param({"kind": "drift", "metric": "f1"}, "does not take 'metric'", id="stray"),
        pytest.param({"kind": "run_failed", "for": 0}, "at least 1", id="for-zero"),
        pytest.param({"kind": "run_failed", "labels": {"severity": "x"}}, "set by", id="label"),
        pytest.param({"kind": "nope"}, "Input should be", id="kind"),
    ],
)
def test_rule_validation(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule(**fields)


def test_alerts_of_a_removed_rule_resolve_on_the_next_tick() -> None:
    old = Machine(rule(kind="run_failed"), rule(kind="run_failed", name="p", **{"for": 5}))
    old.feed(run(T0, status=RunStatus.FAILED))
    assert sorted(s.phase for s in old.states.values()) == [Phase.FIRING, Phase.PENDING]

    new = Machine()  # the configuration no longer has either rule
    new.states = dict(old.states)
    new.feed(Tick(now=T0 + timedelta(minutes=1), since=T0))
    assert sorted(s.phase for s in new.states.values()) == [Phase.INACTIVE, Phase.RESOLVED]
    assert new.sent == [("r", "resolved")]
    new.feed(Tick(now=T0 + timedelta(minutes=2), since=T0))
    assert new.sent == [("r", "resolved")]


def test_latency_rule_reads_the_runs_operational_percentiles() -> None:
    from dataclasses import replace

    from monitor.records import RunOperations

    def timed(p95: float, p99: float) -> RunFinished:
        ops = RunOperations(0.1, 0.2, p95, p99, 0.0, 50.0, None, None, None, None)
        return RunFinished(replace(run().run, operations=ops))

    p95 = Machine(rule(kind="latency", value=0.5))
    p95.feed(timed(0.4, 2.0))
    assert p95.phase() is Phase.INACTIVE
    p95.feed(timed(0.7, 2.0))
    assert p95.phase() is Phase.FIRING
    p99 = Machine(rule(kind="latency", metric="latency-p99", value=1.0))
    p99.feed(timed(0.1, 1.5))
    assert p99.phase() is Phase.FIRING


@pytest.mark.parametrize(
    ("outcome", "says"),
    [
        pytest.param(
            "inconclusive",
            "no regression shown, but inconclusive for f1 (a drop could not be ruled out)",
            id="inconclusive",
        ),
        pytest.param("pass", ": pass", id="pass"),
        pytest.param("improved", ": improved vs baseline", id="improved"),
    ],
)
def test_a_regression_resolved_says_what_the_verdict_found(outcome: str, says: str) -> None:
    m = Machine(rule(kind="regression", metrics=["f1"]))
    m.feed(verdict(("f1", "regressed", -0.05)))
    m.feed(verdict(("f1", outcome, 0.0)))
    state = next(iter(m.states.values()))
    assert state.phase is Phase.RESOLVED
    assert says in state.summary
    assert (outcome == "pass") is state.summary.endswith(": pass")
