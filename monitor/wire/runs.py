"""Runs as the API answers them: a run with its metrics, operations and slices, a page of
runs, one case's result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from monitor.records import Run, RunStatus
from monitor.scoring.evaluation import run_gaps


class MetricOut(BaseModel):
    name: str
    value: float
    lower: float | None
    upper: float | None
    n: int
    detail: str | None = None


class OperationsOut(BaseModel):
    """Client-side latency percentiles (seconds), error rate, throughput (requests per
    second), token totals and cost. ``null`` tokens or cost mean unknown, never zero."""

    latency_p50: float | None
    latency_p90: float | None
    latency_p95: float | None
    latency_p99: float | None
    error_rate: float | None
    throughput: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    currency: str | None


class JudgeOut(BaseModel):
    """One judge metric of a run: its judge, the sha256 of the prompt that produced the
    scores, answered requests, judge errors (answers without a score), and the judge's
    tokens and cost, apart from the model's. ``null`` tokens or cost mean unknown.
    ``agreement``: with ``judge_repeats`` > 1, the judge's mean agreement with itself."""

    metric: str
    judge: str
    prompt_sha256: str
    requests: int
    errors: int
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    currency: str | None
    first_error: str | None = None
    agreement: float | None = None
    cached: int = 0


class SliceOut(BaseModel):
    field: str
    value: str
    metric: str
    score: float
    lower: float | None
    upper: float | None
    n: int


class SliceGapOut(BaseModel):
    """The largest gap of a metric between two values of the slice field ``field``
    (``best`` minus ``worst``), with its 95% bootstrap interval over the two slices'
    cases; null bounds: a slice with fewer than two cases, too few defined resamples, or
    a run stored before slice gap intervals were kept."""

    field: str
    metric: str
    gap: float
    best: str
    worst: str
    lower: float | None = None
    upper: float | None = None


class FairnessOut(BaseModel):
    """One group fairness measure of the run over the case field ``groups`` (fairlearn's
    definition), with its 95% bootstrap interval; ``n`` cases had a group."""

    groups: str
    measure: str
    value: float
    lower: float | None
    upper: float | None
    n: int


class RunOut(BaseModel):
    id: int
    suite: str
    model: str
    status: RunStatus
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    dataset_sha256: str
    config_hash: str
    n_cases: int
    n_errors: int
    error: str | None
    request_id: str | None = None
    tier: str = ""
    # The version the model's registry alias named when the run started; null: no registry.
    model_version: str | None = None
    metrics: list[MetricOut]
    operations: OperationsOut | None = None
    slices: list[SliceOut] = []
    slice_gaps: list[SliceGapOut] = []
    judges: list[JudgeOut] = []
    fairness: list[FairnessOut] = []

    @classmethod
    def of(cls, run: Run) -> RunOut:
        composite = {"metrics", "operations", "slices", "slice_gaps", "judges", "fairness"}
        return cls(
            **{name: getattr(run, name) for name in cls.model_fields if name not in composite},
            metrics=[MetricOut(**vars_of(m)) for m in run.metrics],
            operations=OperationsOut(**vars_of(run.operations)) if run.operations else None,
            slices=[SliceOut(**vars_of(s)) for s in run.slices],
            slice_gaps=[SliceGapOut(**vars_of(g)) for g in run_gaps(run)],
            judges=[JudgeOut(**vars_of(j)) for j in run.judges],
            fairness=[FairnessOut(**vars_of(f)) for f in run.fairness],
        )


class RunPage(BaseModel):
    runs: list[RunOut]
    next_before: int | None


class CaseOut(BaseModel):
    case_id: str
    input: Any
    expected: Any
    prediction: Any
    scores: dict[str, float]
    latency_seconds: float | None
    error_kind: str | None
    error: str | None
    metadata: dict[str, Any] = {}
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: list[Any] | None = None


def vars_of(record: Any) -> dict[str, Any]:
    """The fields of a slotted dataclass record as a dict."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}
