"""Baselines and verdicts: promote a run, list promotions, read a run's verdict, and
approve or reject a verdict its suite holds for review (the token's name is recorded as
the reviewer, and the decision goes into the audit log)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.auth import require_scope
from monitor.api.bodies import body_schema, parse_json
from monitor.api.params import MAX_ID, Before, FilterText, RowId, is_run_id, run_number
from monitor.clock import utc_now
from monitor.gate.html import CONTENT_SECURITY_POLICY, TREND_RUNS, render_html
from monitor.gate.report import GateReport
from monitor.records import RunStatus
from monitor.store.parts import RunsAndVerdicts
from monitor.verdicts.service import Configured, VerdictError, find_baseline, judge_run
from monitor.wire.runs import RunOut
from monitor.wire.verdicts import BaselineOut, VerdictOut

router = APIRouter(tags=["verdicts"])

MAX_TREND_RUNS = 200
BaselineChoice = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^(?:[0-9]+|production)$",
        description="A run id, or 'production'; default: the run's own baseline",
    ),
]
# The report page carries model answers: under this policy nothing on it runs or loads.
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class PromoteIn(BaseModel):
    """Promote a succeeded run to be the baseline of its suite x model, or of ``model``
    (e.g. pin a production run as a candidate's baseline)."""

    model_config = ConfigDict(extra="forbid")

    run_id: int = Field(ge=1, le=MAX_ID)
    model: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str = Field("", max_length=2000)


class ReviewIn(BaseModel):
    """A person's decision on a verdict that waits for review, and why."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class VerdictPage(BaseModel):
    verdicts: list[VerdictOut]
    next_before: int | None


def _store(request: Request) -> RunsAndVerdicts:
    store: RunsAndVerdicts = request.app.state.store
    return store


@router.get("/v1/baselines")
async def list_baselines(
    request: Request,
    suite: FilterText = None,
    model: FilterText = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BaselineOut]:
    """Every promotion, newest first: who promoted which run, when and why; ``active``
    marks the current baseline of each suite x model."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(
        lambda: store.verdicts.list_baselines(suite=suite, model=model, limit=limit)
    )
    return [BaselineOut.of(b) for b in found]


@router.get("/v1/baselines/{baseline_id}", responses={404: {"description": "No such baseline"}})
async def get_baseline(request: Request, baseline_id: RowId) -> BaselineOut:
    found = await anyio.to_thread.run_sync(_store(request).verdicts.get_baseline, baseline_id)
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
    # The body is parsed by the handler, after the token check; this documents it.
    openapi_extra=body_schema(PromoteIn),
)
async def promote_baseline(
    request: Request, who: Annotated[str, Depends(require_scope("write"))]
) -> BaselineOut:
    """Make a succeeded run the active baseline (write scope); earlier promotions stay in
    the history."""
    body = parse_json(PromoteIn, await request.body())
    store = _store(request)
    try:
        promoted = await anyio.to_thread.run_sync(
            lambda: store.verdicts.promote_baseline(
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
    suite: FilterText = None,
    model: FilterText = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Before = None,
) -> VerdictPage:
    """Verdicts, newest first, with every metric row and the case diff."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(
        lambda: store.verdicts.list_verdicts(
            suite=suite, model=model, limit=limit, before_id=before
        )
    )
    next_before = found[-1].id if len(found) == limit else None
    return VerdictPage(verdicts=[VerdictOut.of(v) for v in found], next_before=next_before)


@router.get("/v1/verdicts/{verdict_id}", responses={404: {"description": "No such verdict"}})
async def get_verdict(request: Request, verdict_id: RowId) -> VerdictOut:
    found = await anyio.to_thread.run_sync(_store(request).verdicts.get_verdict, verdict_id)
    if found is None:
        raise HTTPException(404, detail=f"verdict {verdict_id} not found")
    return VerdictOut.of(found)


@router.post(
    "/v1/verdicts/{verdict_id}/review",
    responses={
        404: {"description": "No such verdict"},
        409: {"description": "The verdict needs no review, or was decided already"},
    },
    openapi_extra=body_schema(ReviewIn),
)
async def review_verdict(
    request: Request,
    verdict_id: RowId,
    who: Annotated[str, Depends(require_scope("write"))],
) -> VerdictOut:
    """Approve or reject a verdict that waits for review (write scope). The token's name
    is the reviewer; the decision is final and goes into the audit log. A ``monitor gate
    --wait-review`` waiting on it exits 0 (approved) or 1 (rejected)."""
    body = parse_json(ReviewIn, await request.body())
    store = _store(request)
    try:
        reviewed = await anyio.to_thread.run_sync(
            lambda: store.verdicts.review_verdict(
                verdict_id,
                approve=body.decision == "approve",
                by=who,
                reason=body.reason,
                at=utc_now(),
            )
        )
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    return VerdictOut.of(reviewed)


@router.get("/v1/runs/{run_id}/verdict", responses={404: {"description": "The run has no verdict"}})
async def run_verdict(request: Request, run_id: RowId) -> VerdictOut:
    """The newest verdict of a run (the daemon judges each scheduled run against its
    baseline; a run with no baseline, or on a changed dataset, has none)."""
    store = _store(request)
    found = await anyio.to_thread.run_sync(
        lambda: store.verdicts.list_verdicts(run_id=run_id, limit=1)
    )
    if not found:
        raise HTTPException(404, detail=f"run {run_id} has no verdict")
    return VerdictOut.of(found[0])


@router.get(
    "/v1/runs/{run_id}/report",
    responses={
        404: {"description": "No such run"},
        409: {
            "description": "The run did not succeed, or it cannot be judged (no baseline, "
            "a changed dataset): the detail says which"
        },
    },
)
async def run_report(
    request: Request,
    run_id: RowId,
    baseline: BaselineChoice = None,
    allow_dataset_change: bool = False,
) -> GateReport:
    """The gate's report of a run: its verdict against ``baseline`` with both runs. The
    verdict the daemon stored is reused; otherwise it is computed now and stored (the same
    two runs always give the same verdict). This is what ``monitor gate --remote`` reads."""
    build = _report_builder(request, run_id, baseline, allow_dataset_change)
    return await anyio.to_thread.run_sync(build)


@router.get(
    "/v1/runs/{run_id}/report.html",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The report page"},
        404: {"description": "No such run"},
        409: {
            "description": "The run did not succeed, or it cannot be judged (no baseline, "
            "a changed dataset): the detail says which"
        },
    },
)
async def run_report_html(
    request: Request,
    run_id: RowId,
    baseline: BaselineChoice = None,
    allow_dataset_change: bool = False,
    trend_runs: Annotated[
        int,
        Query(ge=1, le=MAX_TREND_RUNS, description="How many recent runs the trends cover"),
    ] = TREND_RUNS,
) -> HTMLResponse:
    """The same report as ``/report``, as a page with pictures: each comparison's change
    against its tolerance, each metric's trend over the last ``trend_runs`` succeeded runs
    of the suite x model (up to this run), and a word-level diff of the answers that
    changed. Served under a policy that lets no script run and nothing load, so model
    answers on it stay text."""
    store = _store(request)
    build = _report_builder(request, run_id, baseline, allow_dataset_change)

    def page() -> str:
        report = build()
        history = store.runs.list_runs(
            suite=report.run.suite,
            model=report.run.model,
            status=RunStatus.SUCCEEDED,
            limit=trend_runs,
            before_id=report.run.id + 1,
        )
        return render_html(report, [RunOut.of(r) for r in history])

    return HTMLResponse(await anyio.to_thread.run_sync(page), headers=PAGE_HEADERS)


def _report_builder(
    request: Request, run_id: int, baseline: str | None, allow_dataset_change: bool
) -> Callable[[], GateReport]:
    """A function (to run in a worker thread) that builds the gate's report of ``run_id``,
    raising the HTTP error that says why it cannot."""
    number = None if baseline is None else run_number(baseline)
    if number is not None and not is_run_id(number):
        raise HTTPException(409, detail=f"baseline run {number} not found")
    store = _store(request)
    catalog = Configured(
        tuple(request.app.state.suites.values()), tuple(request.app.state.models.values())
    )

    def build() -> GateReport:
        run = store.runs.get_run(run_id)
        if run is None:
            raise HTTPException(404, detail=f"run {run_id} not found")
        if run.status != RunStatus.SUCCEEDED:
            raise HTTPException(
                409, detail=f"run {run_id} is {run.status}: {run.error or 'not finished'}"
            )
        try:
            reference = find_baseline(store, catalog, run.suite, run.model, baseline, run.tier)
            stored = store.verdicts.list_verdicts(
                run_id=run_id, baseline_run_id=reference.run.id, limit=1
            )
            verdict = (
                stored[0]
                if stored and (allow_dataset_change or not stored[0].dataset_changed)
                else judge_run(
                    store,
                    catalog,
                    run,
                    at=utc_now(),
                    baseline=reference,
                    allow_dataset_change=allow_dataset_change,
                )
            )
        except VerdictError as exc:
            raise HTTPException(409, detail=str(exc)) from None
        return GateReport.build(verdict, run, reference.run)

    return build
