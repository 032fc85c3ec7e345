"""The compatible runs API: the benchmarking API users already script against.

``POST /v1/runs`` with ``{"benchmarkId": SUITE, "models": [{"id", "endpoint"}]}`` (plus
our extensions ``sample`` and ``baseline``) stores one request and one ``queued`` run
per model in one transaction, hands the runs to the daemon and answers ``202 {"runId",
"status": "queued"}``. ``GET /v1/runs/{runId}`` (served by ``runs.get_run`` for ids that
are not numbers) reports the request's status, and ``GET /v1/runs/{runId}/results`` its
scores by model with metric keys exactly as stored (``exact-match``, ``f1-score``).
Those two are reported there on 0-100, as the official SQuAD v2 script and the service
this API follows report them (BLEU and chrF are on 0-100 already); the native API keeps
every metric on its stored scale (0-1 for them).

The token is checked before the body is parsed; a body that does not parse, names an
unknown suite or model, or an endpoint outside ``server.allowed_endpoint_prefixes`` is
answered 422 naming the field, and nothing is stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.api.auth import require_scope
from monitor.api.bodies import body_schema, parse_json
from monitor.api.params import MAX_ID, RunKey, is_run_id, run_number
from monitor.api.plans import ModelEntry, ModelPlan, plan_models
from monitor.api.problems import field_error
from monitor.config import AnyModelConfig, SuiteConfig, config_hash
from monitor.records import Run, RunRequest, RunStatus
from monitor.store.parts import HasRuns
from monitor.store.requests import MAX_RUNS, QueuedRun

__all__ = [
    "PERCENT_METRICS",
    "RunRequestOut",
    "Submit",
    "SubmitRefused",
    "compat_status",
    "request_status",
    "router",
]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/runs", tags=["runs"])

Submit = Callable[[SuiteConfig, Sequence[tuple[AnyModelConfig, int]]], None]
"""Hands queued runs (model configuration, run id) of a suite to the daemon, which
executes them; raises ``SubmitRefused`` when it takes no more work (shutting down)."""

CompatStatus = Literal["queued", "running", "completed", "failed"]
SHUTTING_DOWN = "the daemon is shutting down; the request was not run"
PERCENT_METRICS = frozenset({"exact-match", "f1-score"})
"""Metrics stored on 0-1 that the compatible results report on 0-100 (SQuAD v2's scale):
scripts written for the benchmarking service compare them with numbers like ``91.2``."""


class SubmitRefused(Exception):
    """The daemon does not take new runs now."""


class ModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    endpoint: str | None = Field(None, min_length=1, max_length=2000)


class RunRequestIn(BaseModel):
    """A request to run a suite (``benchmarkId``) against models."""

    model_config = ConfigDict(extra="forbid")

    benchmarkId: str = Field(min_length=1, max_length=200)
    models: list[ModelIn] = Field(min_length=1, max_length=MAX_RUNS)
    sample: int | None = Field(
        None, ge=1, le=MAX_ID, description="Run N sampled cases (extension)."
    )
    tier: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Run the suite's tier of this name, judged against that tier's baseline"
        " (extension).",
    )
    baseline: str | None = Field(
        None,
        max_length=64,
        # Documented here, checked by ``_baseline`` (whose message says what is expected).
        json_schema_extra={"pattern": "^(?:[0-9]+|production)$"},
        description='A run id or "production" to judge the runs against (extension).',
    )

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: str | None) -> str | None:
        if value is None or value == "production":
            return value
        if not (value.isascii() and value.isdigit()) or not is_run_id(int(value)):
            raise ValueError(f'expected a run id (1 to {MAX_ID}) or "production"')
        return value


class Accepted(BaseModel):
    runId: str
    status: Literal["queued"] = "queued"


class RequestRunOut(BaseModel):
    """One run of a request; ``cases`` of ``casesPlanned`` scored so far (``casesPlanned``
    is known once the run started: its dataset's cases, after ``sample``)."""

    model: str
    run: int
    status: RunStatus
    cases: int = 0
    casesPlanned: int | None = None


class RunRequestOut(BaseModel):
    """A request's status: ``queued`` (no run started), ``running`` (a run is queued or
    running), ``completed`` (every run succeeded) or ``failed`` (the rest)."""

    runId: str
    benchmarkId: str
    status: CompatStatus
    createdAt: datetime
    completedAt: datetime | None
    error: str | None
    runs: list[RequestRunOut]


class ResultOut(BaseModel):
    task: str | None
    dataset: str | None
    scores: list[dict[str, Any]]


class ResultsOut(BaseModel):
    benchmarkId: str
    name: str
    status: CompatStatus
    completedAt: datetime | None
    results: list[ResultOut]


def compat_status(statuses: Iterable[RunStatus]) -> CompatStatus:
    """The request's status from its runs' statuses."""
    states = [RunStatus(s) for s in statuses]
    if states and all(s is RunStatus.QUEUED for s in states):
        return "queued"
    if any(s in (RunStatus.QUEUED, RunStatus.RUNNING) for s in states):
        return "running"
    if all(s is RunStatus.SUCCEEDED for s in states):
        return "completed"
    return "failed"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        401: {"description": "No or unknown token"},
        403: {"description": "The token lacks the write scope"},
        413: {"description": "The body is over server.max_body_bytes"},
        422: {"description": "A field is malformed or names something unknown"},
        503: {"description": "The daemon takes no new runs (shutting down)"},
    },
    # The body is parsed by the handler, after the token check; this documents it.
    openapi_extra=body_schema(RunRequestIn),
)
async def create_request(
    request: Request, token: Annotated[str, Depends(require_scope("write"))]
) -> Accepted:
    """Run a suite (``benchmarkId``) against one or more models, one run each, queued
    at once. Poll ``GET /v1/runs/{runId}`` until ``completed`` or ``failed``."""
    body = parse_json(RunRequestIn, await request.body())
    state = request.app.state
    suite = _suite(state.suites, body.benchmarkId)
    if body.tier is not None:
        suite = _tier(suite, body.tier, body.sample)
    if body.sample is not None:
        suite = suite.model_copy(update={"sample": body.sample})
    entries = [ModelEntry(m.id, m.endpoint) for m in body.models]
    plans = plan_models(entries, suite, state.models, state.endpoint_guard)
    store: HasRuns = state.store
    await _check_baseline(store, body.baseline, suite.name)
    submit: Submit | None = state.submit
    if submit is None:
        raise HTTPException(503, detail="this server does not execute runs (no daemon)")
    request_id = f"req-{uuid.uuid4().hex}"
    run_ids = await anyio.to_thread.run_sync(
        lambda: store.runs.create_run_request(
            request_id=request_id,
            suite=suite.name,
            models=[plan.stored() for plan in plans],
            sample=body.sample,
            baseline=body.baseline,
            requested_by=token,
            at=datetime.now(UTC),
            tier=body.tier or "",
            runs=[QueuedRun(p.config.name, config_hash(suite, p.config)) for p in plans],
        )
    )
    await _hand_over(store, submit, suite, plans, run_ids)
    pairs = zip(plans, run_ids, strict=True)
    listed = ", ".join(f"{run_id} ({plan.config.name})" for plan, run_id in pairs)
    logger.info("run request %s by %r: suite %s, runs %s", request_id, token, suite.name, listed)
    return Accepted(runId=request_id)


def _suite(suites: Mapping[str, SuiteConfig], name: str) -> SuiteConfig:
    suite = suites.get(name)
    if suite is None:
        known = ", ".join(sorted(suites)) or "none"
        raise field_error(
            ("body", "benchmarkId"), f"unknown benchmark {name!r} (configured suites: {known})"
        )
    return suite


def _tier(suite: SuiteConfig, tier: str, sample: int | None) -> SuiteConfig:
    """``suite`` as its tier ``tier`` runs it; a 422 naming the field otherwise."""
    if sample is not None:
        raise field_error(("body", "tier"), "give either sample or tier: a tier sets the sample")
    try:
        return suite.for_tier(tier)
    except KeyError as exc:
        raise field_error(("body", "tier"), str(exc.args[0])) from None


async def _check_baseline(store: HasRuns, baseline: str | None, suite: str) -> None:
    if baseline is None or baseline == "production":
        return
    run = await anyio.to_thread.run_sync(store.runs.get_run, int(baseline))
    if run is None:
        raise field_error(("body", "baseline"), f"run {baseline} not found")
    if run.suite != suite:
        raise field_error(("body", "baseline"), f"run {baseline} is of suite {run.suite!r}")


async def _hand_over(
    store: HasRuns,
    submit: Submit,
    suite: SuiteConfig,
    plans: Sequence[ModelPlan],
    run_ids: Sequence[int],
) -> None:
    try:
        submit(suite, [(plan.config, run_id) for plan, run_id in zip(plans, run_ids, strict=True)])
    except SubmitRefused:
        # Stored but never to run: say so in the runs rather than leave them queued.
        await anyio.to_thread.run_sync(
            lambda: store.runs.interrupt_running(
                reason=SHUTTING_DOWN, at=datetime.now(UTC), run_ids=run_ids
            )
        )
        raise HTTPException(503, detail=SHUTTING_DOWN) from None


async def request_status(request: Request, request_id: str) -> RunRequestOut:
    """``GET /v1/runs/{runId}`` for a request id."""
    run_request = await _request_or_404(request, request_id)
    names = _ids_by_model(run_request)
    runs = run_request.runs
    store: HasRuns = request.app.state.store
    scored = await anyio.to_thread.run_sync(lambda: _scored(store, runs))
    return RunRequestOut(
        runId=run_request.id,
        benchmarkId=run_request.suite,
        status=compat_status(r.status for r in runs),
        createdAt=run_request.created_at,
        completedAt=_completed_at(runs),
        error=_error(runs, names),
        runs=[
            RequestRunOut(
                model=names.get(r.model, r.model),
                run=r.id,
                status=r.status,
                cases=scored[r.id],
                casesPlanned=r.n_planned,
            )
            for r in runs
        ],
    )


def _scored(store: HasRuns, runs: Sequence[Run]) -> dict[int, int]:
    """The cases each run has scored so far: counted in the store while it runs (its
    results are stored in batches as it goes), its own count once it finished."""
    return {
        r.id: store.runs.count_cases(r.id)[0] if r.status is RunStatus.RUNNING else r.n_cases
        for r in runs
    }


@router.get(
    "/{run_id}/results",
    responses={404: {"description": "No such run or request"}},
)
async def get_results(request: Request, run_id: RunKey) -> ResultsOut:
    """Scores by model, metric keys as stored (``exact-match``, ``f1-score``, ...), with
    ``exact-match`` and ``f1-score`` on 0-100 (the native ``GET /v1/runs/{id}`` keeps
    0-1). For a request id every model of the request; for a run id (digits) that run
    alone. Models whose run did not succeed have no scores."""
    number = run_number(run_id)
    if number is not None:
        store: HasRuns = request.app.state.store
        run = (
            await anyio.to_thread.run_sync(store.runs.get_run, number)
            if is_run_id(number)
            else None
        )
        if run is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"run {run_id} not found")
        return _results(request, run.suite, [run], {})
    run_request = await _request_or_404(request, run_id)
    return _results(request, run_request.suite, run_request.runs, _ids_by_model(run_request))


def _results(
    request: Request, suite_name: str, runs: Sequence[Run], names: Mapping[str, str]
) -> ResultsOut:
    suite: SuiteConfig | None = request.app.state.suites.get(suite_name)
    scores = [
        {"model": names.get(run.model, run.model)}
        | (_compat_scores(run) if run.status is RunStatus.SUCCEEDED else {})
        for run in runs
    ]
    table = ResultOut(
        task=suite.task_label if suite else None,
        dataset=suite.dataset_label if suite else None,
        scores=scores,
    )
    return ResultsOut(
        benchmarkId=suite_name,
        name=suite_name,
        status=compat_status(r.status for r in runs),
        completedAt=_completed_at(runs),
        results=[table],
    )


def _compat_scores(run: Run) -> dict[str, float]:
    """A run's metrics by name, on the compatible API's scale (``PERCENT_METRICS`` x 100)."""
    return {m.name: m.value * 100 if m.name in PERCENT_METRICS else m.value for m in run.metrics}


async def _request_or_404(request: Request, request_id: str) -> RunRequest:
    store: HasRuns = request.app.state.store
    found = await anyio.to_thread.run_sync(store.runs.get_run_request, request_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"run {request_id!r} not found")
    return found


def _ids_by_model(run_request: RunRequest) -> dict[str, str]:
    """The id each model was asked for by, keyed by the name its run is stored under."""
    return {str(m["model"]): str(m["id"]) for m in run_request.models}


def _completed_at(runs: Sequence[Run]) -> datetime | None:
    if compat_status(r.status for r in runs) not in ("completed", "failed"):
        return None
    return max((r.finished_at for r in runs if r.finished_at), default=None)


def _error(runs: Sequence[Run], names: Mapping[str, str]) -> str | None:
    if compat_status(r.status for r in runs) != "failed":
        return None
    failed = [r for r in runs if r.status is not RunStatus.SUCCEEDED]
    return "; ".join(
        f"{names.get(r.model, r.model)}: {r.status}" + (f": {r.error}" if r.error else "")
        for r in failed
    )
