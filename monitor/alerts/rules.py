"""Rules turn an event into observations: for each alert identity, is the condition on?

Pure: an observation carries the alert's labels (its identity), whether its condition
holds, and what to tell a human (value, threshold, summary, details, links). A rule that
has nothing to say about an event returns no observation, which leaves every state as it
was: a threshold rule is not resolved by a failed run that has no metrics.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.alerts.events import (
    DivergenceReady,
    DriftReportReady,
    Event,
    MetricVerdict,
    PerformanceReady,
    RunFinished,
    Tick,
    VerdictReady,
)
from monitor.config.alerts import RuleConfig
from monitor.durations import format_duration
from monitor.records import MetricValue, Run, RunStatus

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One evaluation of a rule for one alert identity."""

    labels: dict[str, str]
    active: bool
    summary: str
    value: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def observe(rule: RuleConfig, event: Event) -> list[Observation]:
    """What ``rule`` says about ``event`` (empty when the event is not its business)."""
    if isinstance(event, RunFinished):
        return _on_run(rule, event.run)
    if isinstance(event, VerdictReady):
        return _on_verdict(rule, event)
    if isinstance(event, DriftReportReady):
        return _on_drift(rule, event)
    if isinstance(event, DivergenceReady):
        return _on_divergence(rule, event)
    if isinstance(event, PerformanceReady):
        return (
            _on_fairness(rule, event) if rule.kind == "fairness" else _on_performance(rule, event)
        )
    return _on_tick(rule, event)


def base_labels(rule: RuleConfig, **scope: str) -> dict[str, str]:
    """An alert's identity: the rule, its severity and kind, what it watches, its labels."""
    return {
        "alertname": rule.name,
        "severity": rule.severity,
        "rule_kind": rule.kind,
        **scope,
        **rule.labels,
    }


def _matches(rule: RuleConfig, suite: str, model: str) -> bool:
    return rule.suite in (None, suite) and rule.model in (None, model)


def _on_run(rule: RuleConfig, run: Run) -> list[Observation]:
    if rule.kind == "fairness":
        return _on_run_fairness(rule, run)
    if rule.kind not in ("threshold", "run_failed", "error_rate", "latency"):
        return []
    if not _matches(rule, run.suite, run.model) or run.status is RunStatus.INTERRUPTED:
        return []
    labels = base_labels(rule, suite=run.suite, model=run.model)
    links = {"run": f"/v1/runs/{run.id}"}
    where = f"suite {run.suite} on model {run.model} (run {run.id})"
    if rule.kind == "run_failed":
        failed = run.status is RunStatus.FAILED
        text = f"run failed: {run.error}" if failed else "run succeeded"
        return [Observation(labels, failed, f"{where}: {text}", links=links)]
    if rule.kind == "error_rate":
        if run.n_cases == 0:
            return []
        rate = run.n_errors / run.n_cases
        limit = rule.value or 0.0
        summary = f"{where}: error rate {rate:.1%} ({run.n_errors} of {run.n_cases} cases)"
        return [Observation(labels, rate > limit, summary + f", limit {limit:.1%}", rate, limit)]
    metric = _run_metric(run, rule.metric_name)
    if metric is None:
        return []
    assert rule.value is not None
    active = _COMPARE[rule.operator](metric.value, rule.value)
    details: dict[str, Any] = {"metric": metric.name, "lower": metric.lower, "upper": metric.upper}
    summary = f"{where}: {metric.name} = {metric.value:.4g} ({rule.operator} {rule.value:g} is bad)"
    return [Observation(labels, active, summary, metric.value, rule.value, details, links)]


def _run_metric(run: Run, name: str) -> MetricValue | None:
    """A run's metric by name; ``latency-p50`` .. ``latency-p99`` (seconds, at the client)
    come from the run's operational figures, which are not scores."""
    metric = next((m for m in run.metrics if m.name == name), None)
    if metric is not None or run.operations is None or not name.startswith("latency-p"):
        return metric
    value = getattr(run.operations, f"latency_{name.removeprefix('latency-')}", None)
    if not isinstance(value, float):
        return None
    return MetricValue(name, value, None, None, run.n_cases - run.n_errors)


def _verdict_summary(where: str, regressions: list[str], watched: list[MetricVerdict]) -> str:
    """What the verdict said. No regression shown is not a pass when a metric is
    inconclusive (a drop could not be ruled out): say so, so a resolution is not read
    as a clean bill of health."""
    if regressions:
        return f"{where}: regressed vs baseline: " + "; ".join(regressions)
    open_ = [m.metric for m in watched if m.outcome == "inconclusive"]
    if open_:
        return (
            f"{where}: no regression shown, but inconclusive for {', '.join(open_)}"
            " (a drop could not be ruled out)"
        )
    if any(m.outcome == "improved" for m in watched):
        return f"{where}: improved vs baseline"
    return f"{where}: pass"


def _on_verdict(rule: RuleConfig, event: VerdictReady) -> list[Observation]:
    if rule.kind != "regression" or not _matches(rule, event.suite, event.model):
        return []
    watched = [m for m in event.metrics if not rule.metrics or m.metric in rule.metrics]
    regressed = [m for m in watched if m.outcome == "regressed"]
    labels = base_labels(rule, suite=event.suite, model=event.model)
    parts = [
        f"{m.metric} {m.baseline:.4g} -> {m.current:.4g} ({m.delta:+.4g}"
        + (f", p={m.p_value:.3g}" if m.p_value is not None else "")
        + ")"
        for m in regressed
    ]
    where = f"suite {event.suite} on model {event.model} (run {event.run_id})"
    summary = _verdict_summary(where, parts, watched)
    worst = min(regressed, key=lambda m: m.delta, default=None)
    details: dict[str, Any] = {
        "metrics": [
            {
                "metric": m.metric,
                "outcome": m.outcome,
                "baseline": m.baseline,
                "current": m.current,
                "delta": m.delta,
                "interval": [m.lower, m.upper],
                "p_value": m.p_value,
            }
            for m in watched
        ],
        "degraded_cases": list(event.degraded_cases[:10]),
    }
    links = {"run": f"/v1/runs/{event.run_id}", "verdict": f"/v1/verdicts/{event.verdict_id}"}
    value = worst.delta if worst is not None else None
    return [Observation(labels, bool(regressed), summary, value, None, details, links)]


def _on_drift(rule: RuleConfig, event: DriftReportReady) -> list[Observation]:
    if rule.kind != "drift" or rule.stream not in (None, event.stream):
        return []
    labels = base_labels(rule, stream=event.stream)
    if rule.columns:
        drifted = [c for c in event.columns if c.column in rule.columns and c.drifted]
        active = bool(drifted)
    else:
        drifted = [c for c in event.columns if c.drifted]
        active = event.dataset_drift
    names = ", ".join(c.column for c in drifted) or "none"
    summary = (
        f"stream {event.stream}: drift share {event.drift_share:.0%}"
        f" (dataset drift: {'yes' if event.dataset_drift else 'no'}); drifted columns: {names}"
    )
    details: dict[str, Any] = {
        "drift_share": event.drift_share,
        "drifted_columns": [
            {"column": c.column, "method": c.method, "score": c.score, "threshold": c.threshold}
            for c in drifted
        ],
    }
    links = {"drift_report": f"/v1/drift/reports/{event.report_id}"}
    return [Observation(labels, active, summary, event.drift_share, None, details, links)]


def _on_divergence(rule: RuleConfig, event: DivergenceReady) -> list[Observation]:
    """A shadow model diverging from production beyond ``value``, judged on the interval:
    the whole interval of the disagreement share above the limit, or of the mean
    difference farther than the limit from zero. A point value beyond the limit whose
    interval still reaches it is noise, not divergence."""
    if rule.kind != "divergence" or rule.stream not in (None, event.stream):
        return []
    if rule.metric not in (None, event.measure):
        return []
    assert rule.value is not None
    limit = rule.value
    if event.measure == "disagreement_share":
        active = event.lower > limit
        bound = f"limit {limit:g}"
    else:
        active = event.lower > limit or event.upper < -limit
        bound = f"limit ±{limit:g}"
    level = f"{event.confidence:.0%}"
    summary = (
        f"stream {event.stream} window {event.window_key}: shadow {event.measure}"
        f" {event.value:.4g} ({level} interval {event.lower:.4g} to {event.upper:.4g},"
        f" {event.n_pairs} pairs, agreement {event.agreement:.1%}); {bound}"
        + ("" if active else ", not beyond it")
    )
    details: dict[str, Any] = {
        "window": event.window_key,
        "measure": event.measure,
        "value": event.value,
        "interval": [event.lower, event.upper],
        "confidence": event.confidence,
        "p_value": event.p_value,
        "n_pairs": event.n_pairs,
        "agreement": event.agreement,
    }
    labels = base_labels(rule, stream=event.stream, measure=event.measure)
    links = {"drift_report": f"/v1/drift/{event.report_id}"}
    return [Observation(labels, active, summary, event.value, limit, details, links)]


def _on_performance(rule: RuleConfig, event: PerformanceReady) -> list[Observation]:
    """A stream's newest window judged worse than its reference performance (a one-sided
    test per metric, Holm-adjusted): the condition holds while a watched metric is."""
    if rule.kind != "performance" or rule.stream not in (None, event.stream) or not event.latest:
        return []
    watched = [m for m in event.metrics if not rule.metrics or m.metric in rule.metrics]
    if not watched:
        return []
    worse = [m for m in watched if m.worse]
    labels = base_labels(rule, stream=event.stream)
    against = "target" if event.baseline == "target" else "reference"
    parts = [
        f"{m.metric} {m.reference:.4g} -> {m.current:.4g} ({m.delta:+.4g}"
        + (f", {m.test} p={m.p_value:.3g}" if m.p_value is not None else "")
        + ")"
        for m in worse
    ]
    where = (
        f"stream {event.stream} window {event.window_key} ({event.state},"
        f" {event.labelled_share:.0%} labelled)"
    )
    summary = (
        f"{where}: worse than the {against}: " + "; ".join(parts)
        if worse
        else f"{where}: not worse than the {against}"
    )
    details: dict[str, Any] = {
        "window": event.window_key,
        "state": event.state,
        "labelled": event.n_labelled,
        "labelled_share": event.labelled_share,
        "metrics": [
            {
                "metric": m.metric,
                "reference": m.reference,
                "current": m.current,
                "delta": m.delta,
                "test": m.test,
                "p_value": m.p_value,
                "worse": m.worse,
            }
            for m in watched
        ],
    }
    links = {} if event.report_id is None else {"drift_report": f"/v1/drift/{event.report_id}"}
    value = min((m.delta for m in worse), default=None)
    return [Observation(labels, bool(worse), summary, value, None, details, links)]


def _beyond(rule: RuleConfig, measure: str, found: float) -> tuple[bool, str]:
    """Whether a fairness measure is beyond the rule's limit (a difference above
    ``value``, the demographic parity ratio below it), and the bad side's operator."""
    assert rule.value is not None
    ratio = measure.endswith("ratio")
    return (found < rule.value if ratio else found > rule.value), "<" if ratio else ">"


def _on_run_fairness(rule: RuleConfig, run: Run) -> list[Observation]:
    """A group fairness measure of a succeeded suite run beyond its limit. A run without
    the measure (failed, or a suite without ``fairness``) leaves the alert as it was."""
    if rule.stream is not None or not _matches(rule, run.suite, run.model):
        return []
    measure = rule.metric or "demographic_parity_difference"
    found = next((f for f in run.fairness if f.measure == measure), None)
    if run.status is not RunStatus.SUCCEEDED or found is None:
        return []
    active, bad = _beyond(rule, measure, found.value)
    summary = (
        f"suite {run.suite} on model {run.model} (run {run.id}): {measure} over"
        f" {found.groups} = {found.value:.4g} ({bad} {rule.value:g} is bad)"
    )
    details: dict[str, Any] = {
        "measure": measure,
        "groups": found.groups,
        "lower": found.lower,
        "upper": found.upper,
        "n": found.n,
    }
    labels = base_labels(rule, suite=run.suite, model=run.model, measure=measure)
    links = {"run": f"/v1/runs/{run.id}"}
    return [Observation(labels, active, summary, found.value, rule.value, details, links)]


def _on_fairness(rule: RuleConfig, event: PerformanceReady) -> list[Observation]:
    """A group fairness measure of the stream's newest scored window beyond its limit:
    a difference above ``value``, or the demographic parity ratio below it. A rule
    naming a suite or model watches suite runs only."""
    if rule.suite is not None or rule.model is not None:
        return []
    if rule.stream not in (None, event.stream) or not event.latest:
        return []
    measure = rule.metric or "demographic_parity_difference"
    found = dict(event.fairness).get(measure)
    if found is None:
        return []
    active, bad = _beyond(rule, measure, found)
    summary = (
        f"stream {event.stream} window {event.window_key} ({event.state}): {measure}"
        f" = {found:.4g} ({bad} {rule.value:g} is bad)"
    )
    details: dict[str, Any] = {"window": event.window_key, "state": event.state}
    details["measure"] = measure
    links = {} if event.report_id is None else {"drift_report": f"/v1/drift/{event.report_id}"}
    labels = base_labels(rule, stream=event.stream, measure=measure)
    return [Observation(labels, active, summary, found, rule.value, details, links)]


def _on_tick(rule: RuleConfig, tick: Tick) -> list[Observation]:
    if rule.kind != "stale":
        return []
    assert rule.after is not None
    after = rule.after
    observations = []
    if rule.stream is not None:
        for s in tick.streams:
            if s.stream == rule.stream:
                labels = base_labels(rule, stream=s.stream)
                observations.append(
                    _stale(
                        labels,
                        f"stream {s.stream}",
                        "data",
                        s.last_data_at,
                        tick,
                        after.total_seconds(),
                    )
                )
        return observations
    for a in tick.suites:
        if _matches(rule, a.suite, a.model):
            labels = base_labels(rule, suite=a.suite, model=a.model)
            what = f"suite {a.suite} on model {a.model}"
            observations.append(
                _stale(
                    labels, what, "successful run", a.last_success_at, tick, after.total_seconds()
                )
            )
    return observations


def _stale(
    labels: dict[str, str],
    what: str,
    thing: str,
    last: datetime | None,
    tick: Tick,
    after_s: float,
) -> Observation:
    age = (tick.now - (last or tick.since)).total_seconds()
    since = "ever" if last is None else f"for {format_duration(timedelta(seconds=round(age)))}"
    summary = (
        f"{what}: no {thing} {since} (stale after {format_duration(timedelta(seconds=after_s))})"
    )
    return Observation(labels, age >= after_s, summary, age, after_s)
