"""The API's views of baselines and verdicts (also the body of the gate's reports)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from monitor.records import AuditEntry, Baseline, Verdict
from monitor.wire.runs import vars_of


class BaselineOut(BaseModel):
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

    @classmethod
    def of(cls, baseline: Baseline) -> BaselineOut:
        return cls(**vars_of(baseline))


class MetricComparisonOut(BaseModel):
    """One metric, overall (``slice`` empty) or in one slice (``field=value``), against the
    baseline. ``lower``/``upper`` bound the two-sided 95% interval of ``delta`` (new -
    baseline); ``p_value`` is two-sided; ``p_adjusted`` one-sided and Holm-adjusted.
    ``bound`` is the one-sided bound of ``delta`` at ``bound_level`` that goes with
    ``p_adjusted``'s test: ``bound_side`` ``upper`` (delta is at most ``bound``, the test
    of a drop when higher is better) or ``lower`` (at least); null in older verdicts."""

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
    bound_side: Literal["upper", "lower"] | None = None
    bound_level: float | None = None


class CaseChangeOut(BaseModel):
    case_id: str
    change: str
    metric: str
    baseline_score: float
    new_score: float
    input: Any
    expected: Any
    baseline_prediction: Any
    new_prediction: Any


class VerdictOut(BaseModel):
    """A verdict. ``review`` is null when its suite asks for no review; else
    ``needs_review`` until a person decides (``approved`` or ``rejected``, with
    ``reviewed_by``, ``reviewed_at`` and ``review_reason``)."""

    id: int
    run_id: int
    baseline_run_id: int
    suite: str
    model: str
    outcome: str
    reason: str
    created_at: datetime
    dataset_changed: bool
    metrics: list[MetricComparisonOut]
    changes: list[CaseChangeOut]
    review: Literal["needs_review", "approved", "rejected"] | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictOut:
        composite = {"metrics", "changes"}
        return cls(
            **{k: getattr(verdict, k) for k in cls.model_fields if k not in composite},
            metrics=[MetricComparisonOut(**vars_of(m)) for m in verdict.metrics],
            changes=[CaseChangeOut(**vars_of(c)) for c in verdict.changes],
        )


class AuditEntryOut(BaseModel):
    """One entry of the audit log: who (``actor``: a token's name, a ``--by`` or $USER)
    did what (``action``) to which ``target``, when and why, with the identifying
    ``details``."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(**vars_of(entry))
