"""Runs: list, detail and per-case results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from monitor.api.requests import RunRequestOut, request_status
from monitor.records import CaseResult, Run, RunStatus
from monitor.scoring.evaluation import slice_gaps
from monitor.store import Store

router = APIRouter(prefix="/v1/runs", tags=["runs"])


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


class SliceOut(BaseModel):
    field: str
    value: str
    metric: str
    score: float
    lower: float | None
    upper: float | None
    n: int


class SliceGapOut(BaseModel):
    field: str
    metric: str
    gap: float
    best: str
    worst: str


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
    metrics: list[MetricOut]
    operations: OperationsOut | None = None
    slices: list[SliceOut] = []
    slice_gaps: list[SliceGapOut] = []

    @classmethod
    def of(cls, run: Run) -> RunOut:
        composite = {"metrics", "operations", "slices", "slice_gaps"}
        return cls(
            **{name: getattr(run, name) for name in cls.model_fields if name not in composite},
            metrics=[MetricOut(**vars_of(m)) for m in run.metrics],
            operations=OperationsOut(**vars_of(run.operations)) if run.operations else None,
            slices=[SliceOut(**vars_of(s)) for s in run.slices],
            slice_gaps=[SliceGapOut(**vars_of(g)) for g in slice_gaps(run.slices)],
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


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("")
async def list_runs(
    request: Request,
    suite: str | None = None,
    model: str | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(description="Only runs with a smaller id")] = None,
) -> RunPage:
    """Runs, newest first. Page with ``before=<next_before>``."""
    store = _store(request)
    runs = await anyio.to_thread.run_sync(
        lambda: store.list_runs(
            suite=suite, model=model, status=status, limit=limit, before_id=before
        )
    )
    next_before = runs[-1].id if len(runs) == limit else None
    return RunPage(runs=[RunOut.of(r) for r in runs], next_before=next_before)


@router.get("/{run_id}", responses={404: {"description": "No such run or request"}})
async def get_run(request: Request, run_id: str) -> RunOut | RunRequestOut:
    """A run id (digits): that run with its aggregate metrics, operational metrics
    (latency percentiles, error rate, throughput, tokens, cost) and per-slice metrics
    with their largest gaps. A request id of ``POST /v1/runs``: the request's status
    (see the compatible API)."""
    if not run_id.isdigit():
        return await request_status(request, run_id)
    return RunOut.of(await _run_or_404(_store(request), int(run_id)))


@router.get("/{run_id}/cases", responses={404: {"description": "No such run"}})
async def list_cases(
    request: Request,
    run_id: int,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CaseOut]:
    """Per-case results of a run, ordered by case id."""
    store = _store(request)
    await _run_or_404(store, run_id)
    cases: list[CaseResult] = await anyio.to_thread.run_sync(
        lambda: store.list_cases(run_id, limit=limit, offset=offset)
    )
    return [CaseOut(**vars_of(c)) for c in cases]


async def _run_or_404(store: Store, run_id: int) -> Run:
    run = await anyio.to_thread.run_sync(store.get_run, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return run
