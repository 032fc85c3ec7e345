"""Hand-built runs and verdicts for the gate's report tests: one per kind of outcome.

The numbers are plausible (they follow ``monitor.verdicts.decide``'s reasons) but fixed by
hand, so the snapshots change only when the rendering does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from monitor.gate import GateReport
from monitor.records import (
    CaseChange,
    JudgeUsage,
    MetricComparison,
    MetricValue,
    Run,
    RunOperations,
    RunStatus,
    Verdict,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SUITE, MODEL = "qa-suite", "model-x"
DATASET = "3f9a1c0d7e5b4a2f" + "0" * 48
OTHER_DATASET = "9b27e4c1aa0f3d55" + "1" * 48

OPERATIONS = RunOperations(
    latency_p50=0.412,
    latency_p90=0.9,
    latency_p95=1.234,
    latency_p99=2.5,
    error_rate=0.006,
    throughput=12.5,
    prompt_tokens=182_340,
    completion_tokens=20_115,
    cost=0.4125,
    currency="USD",
)
BASELINE_OPERATIONS = replace(
    OPERATIONS, latency_p50=0.398, latency_p95=1.1, latency_p99=1.9, cost=0.4031
)


def run(
    run_id: int,
    *,
    model: str = MODEL,
    started: datetime = T0,
    dataset: str = DATASET,
    operations: RunOperations | None = OPERATIONS,
    n_cases: int = 500,
    n_errors: int = 3,
    status: RunStatus = RunStatus.SUCCEEDED,
    error: str | None = None,
) -> Run:
    return Run(
        id=run_id,
        suite=SUITE,
        model=model,
        status=status,
        trigger="gate",
        created_at=started - timedelta(seconds=2),
        started_at=started,
        finished_at=started + timedelta(seconds=72),
        dataset_sha256=dataset,
        config_hash="c0ffee",
        n_cases=n_cases,
        n_errors=n_errors,
        error=error,
        metrics=(MetricValue("exact-match", 0.764, 0.725, 0.8, n_cases - n_errors),),
        operations=operations,
    )


def comparison(metric: str, outcome: str, **fields: object) -> MetricComparison:
    """A comparison with neutral defaults; ``fields`` override them."""
    values: dict[str, object] = {
        "metric": metric,
        "slice": "",
        "outcome": outcome,
        "method": "paired-bootstrap",
        "n": 497,
        "baseline": 0.8123,
        "new": 0.8101,
        "delta": -0.0022,
        "lower": -0.0121,
        "upper": 0.0077,
        "p_value": 0.6612,
        "p_adjusted": 1.0,
        "bound": 0.0061,
        "bound_side": "upper",
        "bound_level": 0.95,
        "margin": 0.02,
        "reason": "change -0.0022 within tolerance (p=1)",
    }
    values.update(fields)
    return MetricComparison(**values)  # type: ignore[arg-type]


def verdict(
    outcome: str,
    metrics: tuple[MetricComparison, ...],
    *,
    changes: tuple[CaseChange, ...] = (),
    dataset_changed: bool = False,
    reason: str = "",
) -> Verdict:
    return Verdict(
        id=7,
        run_id=42,
        baseline_run_id=12,
        suite=SUITE,
        model=MODEL,
        outcome=outcome,
        reason=reason or outcome,
        created_at=T0 + timedelta(seconds=80),
        dataset_changed=dataset_changed,
        metrics=metrics,
        changes=changes,
    )


def report(v: Verdict, *, new: Run | None = None, baseline: Run | None = None) -> GateReport:
    new = new or run(42)
    baseline = baseline or run(
        12, started=T0 - timedelta(days=3), operations=BASELINE_OPERATIONS, n_errors=0
    )
    return GateReport.build(v, new, baseline)


EXACT_REGRESSED = comparison(
    "exact-match",
    "regressed",
    method="mcnemar-exact",
    baseline=0.812,
    new=0.764,
    delta=-0.0483,
    lower=-0.0712,
    upper=-0.0251,
    p_value=0.00011,
    p_adjusted=0.00033,
    bound=-0.0278,
    reason="dropped 0.0483 (p=0.00033), beyond 0.02",
    degraded=31,
    improved=7,
)

CHANGES = (
    CaseChange(
        case_id="q-0017",
        change="degraded",
        metric="exact-match",
        baseline_score=1.0,
        new_score=0.0,
        input={"question": "Who wrote 'The Old Man and the Sea'?", "context": "Hemingway..."},
        expected=["Ernest Hemingway", "Hemingway"],
        baseline_prediction="Ernest Hemingway",
        new_prediction="It was written by the American author Ernest Miller Hemingway in 1951.",
    ),
    CaseChange(
        case_id="q-0203",
        change="degraded",
        metric="f1-score",
        baseline_score=0.8571,
        new_score=0.2,
        input="In which year did the Berlin Wall fall?",
        expected="1989",
        baseline_prediction="1989",
        new_prediction="The wall fell in November,\nafter weeks of protests.",
    ),
    CaseChange(
        case_id="q-0311",
        change="improved",
        metric="exact-match",
        baseline_score=0.0,
        new_score=1.0,
        input="What is the chemical symbol for gold?",
        expected=["Au"],
        baseline_prediction="Ag",
        new_prediction="Au",
    ),
)


def regressed() -> GateReport:
    """An overall regression, a collapsed slice, an inconclusive slice, passing slices."""
    metrics = (
        EXACT_REGRESSED,
        comparison("f1-score", "pass"),
        comparison(
            "exact-match",
            "regressed",
            slice="topic=history",
            method="mcnemar-exact",
            n=120,
            baseline=0.85,
            new=0.6167,
            delta=-0.2333,
            lower=-0.3201,
            upper=-0.1412,
            p_value=1.2e-07,
            p_adjusted=8.4e-07,
            bound=-0.16,
            reason="dropped 0.2333 (p=8.4e-07), beyond 0.02",
            degraded=30,
            improved=2,
        ),
        comparison(
            "f1-score",
            "inconclusive",
            slice="topic=history",
            n=120,
            baseline=0.8712,
            new=0.8398,
            delta=-0.0314,
            lower=-0.0833,
            upper=0.0201,
            p_value=0.2402,
            p_adjusted=0.9608,
            bound=0.0118,
            reason="a drop of 0.04356 is not ruled out with 120 cases; about 412 would tell",
            cases_needed=412,
        ),
        comparison("exact-match", "pass", slice="topic=science", n=377),
        comparison("f1-score", "pass", slice="topic=science", n=377),
    )
    return report(verdict("regressed", metrics, changes=CHANGES))


def passed() -> GateReport:
    metrics = (comparison("exact-match", "pass"), comparison("f1-score", "pass"))
    return report(verdict("pass", metrics))


def inconclusive() -> GateReport:
    metrics = (
        comparison(
            "accuracy",
            "inconclusive",
            method="mcnemar-exact",
            n=40,
            baseline=0.85,
            new=0.8,
            delta=-0.05,
            lower=-0.1801,
            upper=0.0789,
            p_value=0.4531,
            p_adjusted=0.4531,
            bound=0.0692,
            reason="a drop of 0.05 is not ruled out with 40 cases; about 310 would tell",
            cases_needed=310,
            degraded=5,
            improved=3,
        ),
        comparison("f1", "pass", n=40),
    )
    small = run(42, n_cases=40, n_errors=0)
    base = run(12, started=T0 - timedelta(days=3), n_cases=40, n_errors=0)
    return report(verdict("inconclusive", metrics), new=small, baseline=base)


def improved() -> GateReport:
    metrics = (
        comparison(
            "exact-match",
            "improved",
            method="mcnemar-exact",
            baseline=0.764,
            new=0.812,
            delta=0.0483,
            lower=0.0251,
            upper=0.0712,
            p_value=0.00011,
            p_adjusted=0.00022,
            bound=0.0278,
            bound_side="lower",
            reason="gained 0.0483 (p=0.00022)",
            degraded=7,
            improved=31,
        ),
        comparison("f1-score", "pass"),
    )
    return report(verdict("improved", metrics, changes=CHANGES[2:]))


def dataset_changed() -> GateReport:
    metrics = (
        comparison("exact-match", "pass", n=488, unpaired=24),
        comparison("f1-score", "pass", n=488, unpaired=24),
    )
    new = run(42, dataset=OTHER_DATASET)
    return report(verdict("pass", metrics, dataset_changed=True), new=new)


def unknown_cost() -> GateReport:
    """Tokens and cost unknown in the run (no usage reported); no operations at all in the
    baseline (stored before operations were measured)."""
    unknown = replace(OPERATIONS, prompt_tokens=None, completion_tokens=None, cost=None)
    new = run(42, operations=unknown)
    base = run(12, started=T0 - timedelta(days=3), operations=None, n_errors=0)
    # A verdict stored before one-sided bounds were: the report says n/a.
    metrics = (comparison("exact-match", "pass", bound=None, bound_side=None, bound_level=None),)
    return report(verdict("pass", metrics), new=new, baseline=base)


PROMPT = "5e1b0c2d9a7f" + "a" * 52
NEW_PROMPT = "77c0de4b1f20" + "b" * 52


def judged() -> GateReport:
    """A suite with judge metrics: the judges' usage of both runs, a prompt that changed
    since the baseline, a metric the baseline did not have, and a rubric whose verdict is
    corrected for its judge's error rates."""
    judges = (
        JudgeUsage("faithfulness", "gpt-judge", PROMPT, 497, 3, 248500, 24850, 0.0522, "USD"),
        JudgeUsage(
            "rubric:tone",
            "gpt-judge",
            NEW_PROMPT,
            1491,
            0,
            700000,
            74550,
            0.1497,
            "USD",
            agreement=0.9731,
        ),
        JudgeUsage("pairwise", "gpt-judge", PROMPT, 994, 0, 500000, 9940, None, None),
    )
    base_judges = (
        JudgeUsage("faithfulness", "gpt-judge", PROMPT, 500, 0, 250000, 25000, 0.0525, "USD"),
        JudgeUsage("rubric:tone", "gpt-judge", PROMPT, 1500, 0, 705000, 75000, 0.1508, "USD"),
    )
    new = replace(run(42), judges=judges)
    base = replace(
        run(12, started=T0 - timedelta(days=3), operations=BASELINE_OPERATIONS, n_errors=0),
        judges=base_judges,
    )
    metrics = (
        comparison("faithfulness", "pass"),
        comparison(
            "rubric:tone",
            "pass",
            method="mcnemar-exact",
            reason="change -0.0022 within tolerance (p=1); judge-corrected (Rogan-Gladen,"
            " sensitivity 0.92, specificity 0.85)",
        ),
        comparison("pairwise", "pass", method="mcnemar-exact", baseline=0.09, new=0.11),
    )
    return report(verdict("pass", metrics), new=new, baseline=base)


SAMPLES = {
    "regressed": regressed,
    "pass": passed,
    "inconclusive": inconclusive,
    "improved": improved,
    "dataset_changed": dataset_changed,
    "unknown_cost": unknown_cost,
    "judged": judged,
}
