"""Plain records that flow between the runner, the store and the API.

They hold data only: no I/O, no behaviour beyond small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Case:
    """One evaluation case: what is sent to the model, what it should answer, and the
    metadata fields (segment, language, ...) results are sliced by."""

    id: str
    inputs: dict[str, Any]
    expected: Any
    metadata: dict[str, Any] = field(default_factory=dict)


class RunStatus(StrEnum):
    """Where a run is in its life. ``queued`` (accepted by the API, waiting for its turn)
    and ``running`` are the non-final states."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One aggregate metric of a run, with its confidence interval over ``n`` cases."""

    name: str
    value: float
    lower: float | None
    upper: float | None
    n: int
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SliceMetric:
    """One metric over the cases whose field ``field`` has the value ``value``."""

    field: str
    value: str
    metric: str
    score: float
    lower: float | None
    upper: float | None
    n: int


@dataclass(frozen=True, slots=True)
class FairnessValue:
    """One group fairness measure of a run (``fairness`` of the suite): fairlearn's
    demographic parity difference or ratio or equalized odds difference over the cases
    grouped by the case field ``groups``, with a 95% bootstrap interval; ``n`` counts the
    cases with a prediction, an expected value and a group."""

    groups: str
    measure: str
    value: float
    lower: float | None
    upper: float | None
    n: int


@dataclass(frozen=True, slots=True)
class SliceGap:
    """The largest difference of a metric between two values of a slice field: the signal
    that one segment collapsed while the average held. ``lower`` and ``upper`` are its
    95% interval: a seeded bootstrap over the cases of the two slices the gap names (best
    minus worst), ``None`` when either slice has fewer than two scored cases, the
    bootstrap had too few defined resamples, or the run was stored before intervals were
    (revision 0026)."""

    field: str
    metric: str
    gap: float
    best: str
    worst: str
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True, slots=True)
class RunOperations:
    """How a run went operationally, measured at the client.

    Token counts are ``None`` when any answered request came back without a usage report,
    and ``cost`` is ``None`` when tokens are unknown or the model has no price: an unknown
    cost is never reported as 0.
    """

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


@dataclass(frozen=True, slots=True)
class JudgeUsage:
    """What one judge metric of a run asked its judge, and what it cost: kept apart from
    the evaluated model's tokens and cost (``RunOperations``), never added to them.

    ``prompt_sha256`` identifies the prompt template that produced the scores.
    ``requests`` counts answered judge requests; ``errors`` the judge requests that failed
    or whose answer was not valid JSON for the metric (those cases have no score for it),
    ``first_error`` says why the first one failed. Tokens are ``None`` when any answer
    came without a usage report, and ``cost`` when tokens are unknown or the judge has no
    price.
    """

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
    cached: int = 0
    """Judge answers reused from the judge-answer cache (no request, no tokens)."""
    agreement: float | None = None
    """With ``judge_repeats`` > 1: the judge's mean agreement with itself over the cases,
    each case's being the share of its repeats that gave the reduced judgement's modal
    value (1.0: every repeat agreed)."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What happened to one case of a run. ``error_kind`` is set when the model endpoint
    failed; such a case has no scores and counts toward the error rate, not the metrics."""

    case_id: str
    input: Any
    expected: Any
    prediction: Any = None
    scores: dict[str, float] = field(default_factory=dict)
    latency_seconds: float | None = None
    error_kind: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: list[Any] | None = None
    """Every attempt's prediction when the suite repeats cases; ``prediction`` is then the
    reducer's representative answer."""
    model_scores: Any = None
    """What the endpoint said about the representative answer (class probabilities, a
    score), kept so a verdict can recompute score-based metrics such as ROC AUC."""


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a suite against a model."""

    id: int
    suite: str
    model: str
    status: RunStatus
    trigger: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    dataset_sha256: str
    config_hash: str
    n_cases: int
    n_errors: int
    error: str | None
    metrics: tuple[MetricValue, ...] = ()
    operations: RunOperations | None = None
    slices: tuple[SliceMetric, ...] = ()
    request_id: str | None = None
    """The ``POST /v1/runs`` request the run belongs to, if any."""
    tier: str = ""
    """The suite's tier the run ran (``smoke``, ``full``); empty: the suite as configured."""
    n_planned: int | None = None
    """The cases the run set out to score (its dataset's, after ``sample``), known from
    its start; ``None`` before it started."""
    model_version: str | None = None
    """The version the model's registry alias named when the run started (``registry``
    of the model); ``None`` when the model has no registry."""
    judges: tuple[JudgeUsage, ...] = ()
    """Each judge metric's judge, prompt hash, requests, tokens and cost."""
    fairness: tuple[FairnessValue, ...] = ()
    """The suite's group fairness measures (``fairness`` of the suite), if it has any."""
    gaps: tuple[SliceGap, ...] = ()
    """The largest gap per slice field and metric with its interval, as the run stored
    them; empty for runs stored before revision 0026 (``run_gaps`` then recomputes the
    point gaps from ``slices``, without intervals)."""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A request of the compatible runs API (``POST /v1/runs``): one suite against one or
    more models, one run each. ``models`` holds each model entry as it is kept: ``id`` as
    sent, ``model`` the name its run is stored under, ``endpoint`` the ad-hoc URL or
    ``None``. ``baseline`` is a run id or ``"production"`` when the request named one."""

    id: str
    suite: str
    models: tuple[dict[str, Any], ...]
    sample: int | None
    baseline: str | None
    requested_by: str
    created_at: datetime
    runs: tuple[Run, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A model as the store knows it: config facts that are safe to keep (no headers)."""

    name: str
    adapter: str
    url: str
    role: str
    config_hash: str


@dataclass(frozen=True, slots=True)
class CatalogSuite:
    """A suite as the store knows it."""

    name: str
    dataset: str
    task: str
    config_hash: str


@dataclass(frozen=True, slots=True)
class LatestScore:
    """A metric of the latest succeeded run of a suite x model, for the metrics exporter."""

    suite: str
    model: str
    metric: str
    value: float
    lower: float | None
    upper: float | None
    run_id: int
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Per suite x model: run counts by status, the times of the latest runs, and what
    the finished runs asked and spent.

    The totals add up every finished run (succeeded, failed, interrupted); tokens and
    cost only where they are known, so they are ``None`` (empty) until some run knows
    them, never 0 by default. ``last_*`` describe the run that finished last.
    """

    suite: str
    model: str
    counts: dict[str, int]
    last_finished_at: datetime | None
    last_success_at: datetime | None
    last_duration_seconds: float | None
    cases: int = 0
    case_errors: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: dict[str, float] = field(default_factory=dict)
    """Currency -> total cost."""
    last_cases: int | None = None
    last_case_errors: int | None = None
    last_cost: float | None = None
    last_currency: str | None = None
    updated_at: datetime | None = None
    """When a run of the pair was last created or finished (for ``adhoc_series_ttl``)."""
    judge_prompt_tokens: int | None = None
    judge_completion_tokens: int | None = None
    judge_cost: dict[str, float] = field(default_factory=dict)
    """What the judges of the finished runs' judge metrics used and cost (currency ->
    total), apart from the model's own tokens and cost above."""


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """One accepted ingest batch: its rows as Arrow IPC bytes, their time span, and the
    stream row number of its first row (row-count windows are cut on those numbers)."""

    id: int
    stream: str
    received_at: datetime
    first_ts: datetime
    last_ts: datetime
    first_row: int
    n_rows: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A reference profile, computed once per reference (``reference_hash``) and kept."""

    id: int
    stream: str
    reference_hash: str
    created_at: datetime
    n_rows: int
    profile: bytes


@dataclass(frozen=True, slots=True)
class DriftReport:
    """One window of a stream judged against its reference.

    ``columns`` is the JSON form of the engine's per-column result: column, kind,
    drifted, results (method, statistic, p_value, threshold, drifted, kind), quality.
    ``segments`` is the drift per segment (``monitor.streams.evaluate.segment_entries``):
    column, segment, status, n_rows, reference_rows, drift_share, dataset_drifted,
    largest, drifted_columns and columns as above; empty without ``segments``.
    """

    id: int
    stream: str
    window_key: str
    window_start: datetime | None
    window_end: datetime | None
    created_at: datetime
    status: str
    n_rows: int
    drift_share: float | None
    dataset_drifted: bool
    columns: tuple[dict[str, Any], ...]
    profile_id: int | None
    has_html: bool = False
    segments: tuple[dict[str, Any], ...] = ()
    shadow: dict[str, Any] | None = None
    shadow_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StreamCount:
    """Rows ingested into a stream so far, for the ``rows ingested`` counter."""

    stream: str
    n_rows: int
    n_batches: int
    last_received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StreamExtent:
    """The retained rows of an ingest stream: numbers ``[first_row, end_row)``, the first
    of them timestamped ``first_ts``. Retention drops the oldest batches, so ``first_row``
    grows; ``end_row`` is where the next batch is numbered."""

    first_row: int
    end_row: int
    first_ts: datetime


@dataclass(frozen=True, slots=True)
class NewDriftReport:
    """A drift report about to be stored (``DriftReport`` without id, plus its HTML)."""

    stream: str
    window_key: str
    window_start: datetime | None
    window_end: datetime | None
    created_at: datetime
    status: str
    n_rows: int
    drift_share: float | None
    dataset_drifted: bool
    columns: tuple[dict[str, Any], ...]
    profile_id: int | None = None
    html: str | None = None
    segments: tuple[dict[str, Any], ...] = ()
    shadow: dict[str, Any] | None = None
    shadow_due_at: datetime | None = None
    """When the window's join with a shadow stream becomes final (``None``: no join)."""


@dataclass(frozen=True, slots=True)
class WindowPerformance:
    """A stream window's realized performance, from the labels known at ``updated_at``.

    ``state`` is ``provisional`` until ``due_at`` (the window's end plus the label
    delay), then ``final``; labels that change a final window's figures make it
    ``reopened`` (``reopened`` counts how often) until the label delay has passed again.
    ``status`` is ``ok`` or ``insufficient_labels`` (no metric computed). ``metrics``
    are ``{metric, value, lower, upper}``, ``comparison`` the judged metrics against the
    reference (``{metric, reference, current, delta, test, p_value, worse}``), ``worse``
    whether any of them is judged worse; ``baseline`` says against what
    (``reference``, ``target`` or ``None``: nothing to compare with)."""

    stream: str
    window_key: str
    window_start: datetime | None
    window_end: datetime | None
    report_id: int | None
    state: str
    status: str
    n_rows: int
    n_labelled: int
    metrics: tuple[dict[str, Any], ...]
    comparison: tuple[dict[str, Any], ...]
    worse: bool
    baseline: str | None
    due_at: datetime
    labels_until: datetime | None
    labels_digest: str
    reopened: int
    reopened_at: datetime | None
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    groups: dict[str, Any] = field(default_factory=dict)
    """Per segment column and value the metrics (``segments``), per metric the largest
    gap between segments (``gaps``), and the fairness measures (``fairness``)."""

    @property
    def labelled_share(self) -> float:
        return self.n_labelled / self.n_rows if self.n_rows else 0.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """A promotion of a run to be the golden baseline of a suite x model. Every promotion
    is kept; the ``active`` one is the baseline now. ``dataset_sha256`` is the dataset the
    baseline run scored: a run on another dataset version is not compared with it unless
    the suite allows it."""

    id: int
    suite: str
    model: str
    run_id: int
    dataset_sha256: str
    promoted_at: datetime
    promoted_by: str
    reason: str
    active: bool
    tier: str = ""
    """The tier of the baseline run: runs of a tier are judged against its baseline."""


JUDGE_CORRECTED = "judge-corrected (Rogan-Gladen"
"""How a :class:`MetricComparison`'s ``reason`` notes that its values are corrected for
its judge's measured error rates (the verdict writes it, reports look for it)."""


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric (overall, or in one slice ``field=value``) of a run against its baseline:
    the paired test, the outcome and why. ``p_value`` is two-sided and raw; ``p_adjusted``
    is one-sided in the direction of the outcome it supports and Holm-adjusted over every
    metric and slice of the verdict. ``degraded`` / ``improved`` count pass-to-fail and
    fail-to-pass cases for pass/fail metrics. ``bound`` is the one-sided bound of
    ``delta`` at ``bound_level`` (1 - alpha) that goes with ``p_adjusted``'s test:
    ``bound_side`` ``upper`` (delta is at most ``bound``) or ``lower`` (at least); ``None``
    in verdicts stored before bounds were."""

    metric: str
    slice: str
    outcome: str
    method: str
    n: int
    baseline: float
    new: float
    delta: float
    lower: float
    upper: float
    p_value: float
    p_adjusted: float
    margin: float
    reason: str
    cases_needed: int | None = None
    unpaired: int = 0
    degraded: int | None = None
    improved: int | None = None
    bound: float | None = None
    bound_side: str | None = None
    bound_level: float | None = None


@dataclass(frozen=True, slots=True)
class CaseChange:
    """A case whose score changed between the baseline and the run: ``degraded`` (pass to
    fail, or among the largest score drops) or ``improved``. Inputs, expected values and
    predictions are truncated for display."""

    case_id: str
    change: str
    metric: str
    baseline_score: float
    new_score: float
    input: Any
    expected: Any
    baseline_prediction: Any
    new_prediction: Any


@dataclass(frozen=True, slots=True)
class Verdict:
    """A run judged against a baseline run. ``outcome`` is ``regressed``, ``improved``,
    ``pass`` or ``inconclusive``. ``review`` is None when the suite asks for no review of
    it, else where the approval stands (``needs_review`` until a person decides), with who
    decided, when and why."""

    id: int
    run_id: int
    baseline_run_id: int
    suite: str
    model: str
    outcome: str
    reason: str
    created_at: datetime
    dataset_changed: bool
    metrics: tuple[MetricComparison, ...] = ()
    changes: tuple[CaseChange, ...] = ()
    review: Review | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None


class Review(StrEnum):
    """The approval state of a verdict that a suite's ``review`` setting gates."""

    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"


AUDIT_ACTIONS = (
    "alert.silenced",
    "baseline.promoted",
    "registry.promoted",
    "review.approved",
    "review.rejected",
)
"""Every action the audit log records."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit log: ``actor`` did ``action`` (``review.approved``,
    ``review.rejected``, ``baseline.promoted``, ``alert.silenced``) on ``target`` (``verdict
    12``, ``run 5``, ``silence 3``) at ``at``, for ``reason``; ``details`` holds the ids and
    names that identify what changed."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
