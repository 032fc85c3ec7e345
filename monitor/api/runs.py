"""Runs: list, detail and per-case results."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request

from monitor.api.params import Before, FilterText, Offset, RowId, RunKey, is_run_id, run_number
from monitor.api.requests import RunRequestOut, request_status
from monitor.records import CaseResult, Run, RunStatus
from monitor.store.parts import HasRuns
from monitor.wire.runs import CaseOut, RunOut, RunPage, vars_of

router = APIRouter(prefix="/v1/runs", tags=["runs"])


def _store(request: Request) -> HasRuns:
    store: HasRuns = request.app.state.store
    return store


@router.get("")
async def list_runs(
    request: Request,
    suite: FilterText = None,
    model: FilterText = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Before = None,
) -> RunPage:
    """Runs, newest first. Page with ``before=<next_before>``."""
    store = _store(request)
    runs = await anyio.to_thread.run_sync(
        lambda: store.runs.list_runs(
            suite=suite, model=model, status=status, limit=limit, before_id=before
        )
    )
    next_before = runs[-1].id if len(runs) == limit else None
    return RunPage(runs=[RunOut.of(r) for r in runs], next_before=next_before)


@router.get("/{run_id}", responses={404: {"description": "No such run or request"}})
async def get_run(request: Request, run_id: RunKey) -> RunOut | RunRequestOut:
    """A run id (digits): that run with its aggregate metrics, operational metrics
    (latency percentiles, error rate, throughput, tokens, cost) and per-slice metrics
    with their largest gaps. A request id of ``POST /v1/runs``: the request's status
    (see the compatible API)."""
    number = run_number(run_id)
    if number is None:
        return await request_status(request, run_id)
    return RunOut.of(await _run_or_404(_store(request), number))


@router.get("/{run_id}/cases", responses={404: {"description": "No such run"}})
async def list_cases(
    request: Request,
    run_id: RowId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[CaseOut]:
    """Per-case results of a run, ordered by case id."""
    store = _store(request)
    await _run_or_404(store, run_id)
    cases: list[CaseResult] = await anyio.to_thread.run_sync(
        lambda: store.runs.list_cases(run_id, limit=limit, offset=offset)
    )
    return [CaseOut(**vars_of(c)) for c in cases]


async def _run_or_404(store: HasRuns, run_id: int) -> Run:
    run = await anyio.to_thread.run_sync(store.runs.get_run, run_id) if is_run_id(run_id) else None
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return run
