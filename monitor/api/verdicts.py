"""Baselines and verdicts: promote a run, list promotions, read a run's verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.auth import require_scope
from monitor.api.runs import vars_of
from monitor.clock import utc_now
from monitor.records import Baseline, Verdict
from monitor.store import Store


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

    @classmethod
    def of(cls, baseline: Baseline) -> BaselineOut:
        return cls(**vars_of(baseline))


class MetricComparisonOut(BaseModel):
    """One metric, overall (``slice`` empty) or in one slice (``field=value``), against the
    baseline. ``lower``/``upper`` bound the 95% interval of ``delta`` (new - baseline);
    ``p_value`` is two-sided; ``p_adjusted`` one-sided and Holm-adjusted."""

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

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictOut:
        composite = {"metrics", "changes"}
        return cls(
            **{k: getattr(verdict, k) for k in cls.model_fields if k not in composite},
            metrics=[MetricComparisonOut(**vars_of(m)) for m in verdict.metrics],
            changes=[CaseChangeOut(**vars_of(c)) for c in verdict.changes],
        )


router = APIRouter(tags=["verdicts"])


class PromoteIn(BaseModel):
    """Promote a succeeded run to be the baseline of its suite x model, or of ``model``
    (e.g. pin a production run as a candidate's baseline)."""

    model_config = ConfigDict(extra="forbid")

    run_id: int
    model: str | None = None
    reason: str = Field("", max_length=2000)


class VerdictPage(BaseModel):
    verdicts: list[VerdictOut]
    next_before: int | None


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/v1/baselines")
async def list_baselines(
    request: Request,
    suite: str | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BaselineOut]:
    """Every promotion, newest first: who promoted which run, when and why; ``active``
    marks the current baseline of each suite x model."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(
        lambda: store.list_baselines(suite=suite, model=model, limit=limit)
    )
    return [BaselineOut.of(b) for b in found]


@router.get("/v1/baselines/{baseline_id}", responses={404: {"description": "No such baseline"}})
async def get_baseline(request: Request, baseline_id: int) -> BaselineOut:
    found = await anyio.to_thread.run_sync(_store(request).get_baseline, baseline_id)
    if found is None:
        raise HTTPException(404, detail=f"baseline {baseline_id} not found")
    return BaselineOut.of(found)


@router.post(
    "/v1/baselines",
    status_code=201,
    responses={
        404: {"description": "No such run"},
        409: {"description": "The run did not succeed"},
    },
)
async def promote_baseline(
    request: Request, body: PromoteIn, who: Annotated[str, Depends(require_scope("write"))]
) -> BaselineOut:
    """Make a succeeded run the active baseline (write scope); earlier promotions stay in
    the history."""
    store = _store(request)
    try:
        promoted = await anyio.to_thread.run_sync(
            lambda: store.promote_baseline(
                body.run_id, model=body.model, by=who, reason=body.reason, at=utc_now()
            )
        )
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    assert promoted is not None
    return BaselineOut.of(promoted)


@router.get("/v1/verdicts")
async def list_verdicts(
    request: Request,
    suite: str | None = None,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(description="Only verdicts with a smaller id")] = None,
) -> VerdictPage:
    """Verdicts, newest first, with every metric row and the case diff."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(
        lambda: store.list_verdicts(suite=suite, model=model, limit=limit, before_id=before)
    )
    next_before = found[-1].id if len(found) == limit else None
    return VerdictPage(verdicts=[VerdictOut.of(v) for v in found], next_before=next_before)


@router.get("/v1/verdicts/{verdict_id}", responses={404: {"description": "No such verdict"}})
async def get_verdict(request: Request, verdict_id: int) -> VerdictOut:
    found = await anyio.to_thread.run_sync(_store(request).get_verdict, verdict_id)
    if found is None:
        raise HTTPException(404, detail=f"verdict {verdict_id} not found")
    return VerdictOut.of(found)


@router.get("/v1/runs/{run_id}/verdict", responses={404: {"description": "The run has no verdict"}})
async def run_verdict(request: Request, run_id: int) -> VerdictOut:
    """The newest verdict of a run (the daemon judges each scheduled run against its
    baseline; a run with no baseline, or on a changed dataset, has none)."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(lambda: store.list_verdicts(run_id=run_id, limit=1))
    if not found:
        raise HTTPException(404, detail=f"run {run_id} has no verdict")
    return VerdictOut.of(found[0])
