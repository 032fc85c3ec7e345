"""What the alert engine reacts to: small frozen events, one per producer.

The runner's result becomes ``RunFinished``; the daemon's timer makes ``Tick``; the
verdict and drift producers hand ``VerdictReady`` and ``DriftReportReady`` to the same
hook (``AlertService.handle``). Events carry plain data only, so the engine that reads
them stays pure and is tested with events built by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.records import DriftReport, Run, Verdict, WindowPerformance


@dataclass(frozen=True, slots=True)
class RunFinished:
    """A run reached a final status (succeeded, failed or interrupted)."""

    run: Run


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """One metric of a verdict: run vs baseline."""

    metric: str
    outcome: str  # pass | regressed | improved | inconclusive
    baseline: float
    current: float
    delta: float
    lower: float | None = None
    upper: float | None = None
    p_value: float | None = None


@dataclass(frozen=True, slots=True)
class VerdictReady:
    """A run was compared with its baseline."""

    suite: str
    model: str
    run_id: int
    verdict_id: int
    at: datetime
    metrics: tuple[MetricVerdict, ...]
    degraded_cases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column of a drift report."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReportReady:
    """One window of a stream was compared with its reference."""

    stream: str
    report_id: int
    at: datetime
    dataset_drift: bool
    drift_share: float
    columns: tuple[ColumnDrift, ...] = ()


def verdict_event(verdict: Verdict) -> VerdictReady:
    """The alerting view of a stored verdict: its overall metric rows (slices that
    regressed are folded into their metric's row as a regression) and degraded cases."""
    rows: dict[str, MetricVerdict] = {}
    for m in verdict.metrics:
        if not m.slice:
            rows[m.metric] = MetricVerdict(
                m.metric, m.outcome, m.baseline, m.new, m.delta, m.lower, m.upper, m.p_adjusted
            )
    for m in verdict.metrics:
        row = rows.get(m.metric)
        if m.slice and m.outcome == "regressed" and row is not None and row.outcome != "regressed":
            rows[m.metric] = MetricVerdict(
                m.metric,
                "regressed",
                row.baseline,
                row.current,
                row.delta,
                row.lower,
                row.upper,
                m.p_adjusted,
            )
    return VerdictReady(
        suite=verdict.suite,
        model=verdict.model,
        run_id=verdict.run_id,
        verdict_id=verdict.id,
        at=verdict.created_at,
        metrics=tuple(rows.values()),
        degraded_cases=tuple(c.case_id for c in verdict.changes if c.change == "degraded"),
    )


def drift_event(report: DriftReport) -> DriftReportReady | None:
    """The alerting view of a stored drift report; ``None`` for a window that was not
    judged (``insufficient_data``)."""
    if report.status != "ok" or report.drift_share is None:
        return None
    columns = []
    for column in report.columns:
        results = column.get("results") or ()
        if not results:
            continue
        first = results[0]
        columns.append(
            ColumnDrift(
                column=str(column["column"]),
                method=str(first["method"]),
                score=float(first.get("statistic") or 0.0),
                threshold=float(first.get("threshold") or 0.0),
                drifted=bool(column.get("drifted")),
            )
        )
    return DriftReportReady(
        stream=report.stream,
        report_id=report.id,
        at=report.created_at,
        dataset_drift=report.dataset_drifted,
        drift_share=report.drift_share,
        columns=tuple(columns),
    )


@dataclass(frozen=True, slots=True)
class MetricJudged:
    """One metric of a stream window against its reference performance (or target)."""

    metric: str
    reference: float
    current: float
    delta: float
    test: str | None
    p_value: float | None
    worse: bool


@dataclass(frozen=True, slots=True)
class PerformanceReady:
    """A stream window's realized performance was scored or re-scored. ``latest`` says
    whether it is the stream's newest scored window: only that one moves a
    ``performance`` alert (a reopened old window must not resolve a current drop)."""

    stream: str
    window_key: str
    at: datetime
    state: str
    n_labelled: int
    labelled_share: float
    latest: bool
    baseline: str | None
    metrics: tuple[MetricJudged, ...] = ()
    report_id: int | None = None
    fairness: tuple[tuple[str, float], ...] = ()
    """``(measure, value)`` of the window's group fairness measures."""


def performance_event(row: WindowPerformance, *, latest: bool) -> PerformanceReady | None:
    """The alerting view of a stored window performance; ``None`` when nothing was
    scored (too few labels)."""
    if row.status != "ok":
        return None
    metrics = tuple(
        MetricJudged(
            metric=str(m["metric"]),
            reference=float(m["reference"]),
            current=float(m["current"]),
            delta=float(m["delta"]),
            test=m.get("test"),
            p_value=m.get("p_value"),
            worse=bool(m.get("worse")),
        )
        for m in row.comparison
        if m.get("reference") is not None and m.get("current") is not None
    )
    return PerformanceReady(
        stream=row.stream,
        window_key=row.window_key,
        at=row.updated_at,
        state=row.state,
        n_labelled=row.n_labelled,
        labelled_share=row.labelled_share,
        latest=latest,
        baseline=row.baseline,
        metrics=metrics,
        report_id=row.report_id,
        fairness=tuple(
            (str(f["measure"]), float(f["value"]))
            for f in row.groups.get("fairness", ())
            if f.get("value") is not None
        ),
    )


@dataclass(frozen=True, slots=True)
class DivergenceReady:
    """A stream window's shadow comparison: the divergence of the shadow model's
    predictions from production's, with its interval."""

    stream: str
    report_id: int
    window_key: str
    at: datetime
    n_pairs: int
    agreement: float
    measure: str
    value: float
    lower: float
    upper: float
    confidence: float
    p_value: float | None = None


def divergence_event(report: DriftReport) -> DivergenceReady | None:
    """The alerting view of a stored report's shadow comparison; ``None`` without one
    (no shadow prediction, or too few paired records)."""
    shadow = report.shadow
    if not shadow or shadow.get("status") != "ok" or not shadow.get("divergence"):
        return None
    d = shadow["divergence"]
    if d.get("value") is None or d.get("lower") is None or d.get("upper") is None:
        return None
    return DivergenceReady(
        stream=report.stream,
        report_id=report.id,
        window_key=report.window_key,
        at=report.created_at,
        n_pairs=int(shadow["n_pairs"]),
        agreement=float(shadow["agreement"]),
        measure=str(d["measure"]),
        value=float(d["value"]),
        lower=float(d["lower"]),
        upper=float(d["upper"]),
        confidence=float(shadow.get("confidence", 0.95)),
        p_value=d.get("p_value"),
    )


@dataclass(frozen=True, slots=True)
class SuiteActivity:
    """When a suite x model last succeeded (``None``: never)."""

    suite: str
    model: str
    last_success_at: datetime | None


@dataclass(frozen=True, slots=True)
class StreamActivity:
    """When a stream last received data (``None``: never)."""

    stream: str
    last_data_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tick:
    """The timer: time-based rules (``stale``) and re-notification are checked now.

    ``since`` is when the watch began (daemon start): something that never succeeded is
    stale once ``after`` has passed since then, not from the epoch.
    """

    now: datetime
    since: datetime
    suites: tuple[SuiteActivity, ...] = ()
    streams: tuple[StreamActivity, ...] = ()


Event = RunFinished | VerdictReady | DriftReportReady | PerformanceReady | DivergenceReady | Tick


def event_time(event: Event) -> datetime:
    """When ``event`` happened, as the engine's clock for it."""
    if isinstance(event, RunFinished):
        run = event.run
        return run.finished_at or run.started_at or run.created_at
    if isinstance(event, Tick):
        return event.now
    return event.at
