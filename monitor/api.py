"""The HTTP API: health, readiness, runs, and ``/metrics``, on one FastAPI app.

Handlers call the synchronous store through a worker thread so a slow query never stalls
the event loop the scheduler shares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from monitor.records import CaseResult, Run, RunStatus
from monitor.store import Store


class MetricOut(BaseModel):
    name: str
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
    metrics: list[MetricOut]

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            **{name: getattr(run, name) for name in cls.model_fields if name != "metrics"},
            metrics=[MetricOut(**vars_of(m)) for m in run.metrics],
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


def vars_of(record: Any) -> dict[str, Any]:
    """The fields of a slotted dataclass record as a dict."""
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def create_app(store: Store, registry: CollectorRegistry, *, version: str) -> FastAPI:
    """The daemon's HTTP app. ``registry`` is the daemon's own, never the global one."""
    app = FastAPI(
        title="monitor", version=version, description="Model evaluation and drift monitor."
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "Not ready"}})
    async def readyz() -> JSONResponse:
        """The store answers and its schema is at the latest migration."""
        reason = await anyio.to_thread.run_sync(store.check_ready)
        if reason is None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus exposition, negotiated from the Accept header."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await anyio.to_thread.run_sync(encoder, registry)
        return Response(body, media_type=content_type)

    @app.get("/v1/runs", tags=["runs"])
    async def list_runs(
        suite: str | None = None,
        model: str | None = None,
        status: RunStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[int | None, Query(description="Only runs with a smaller id")] = None,
    ) -> RunPage:
        """Runs, newest first. Page with ``before=<next_before>``."""
        runs = await anyio.to_thread.run_sync(
            lambda: store.list_runs(
                suite=suite, model=model, status=status, limit=limit, before_id=before
            )
        )
        next_before = runs[-1].id if len(runs) == limit else None
        return RunPage(runs=[RunOut.of(r) for r in runs], next_before=next_before)

    @app.get("/v1/runs/{run_id}", tags=["runs"], responses={404: {"description": "No such run"}})
    async def get_run(run_id: int) -> RunOut:
        """One run with its aggregate metrics."""
        return RunOut.of(await _run_or_404(store, run_id))

    @app.get(
        "/v1/runs/{run_id}/cases", tags=["runs"], responses={404: {"description": "No such run"}}
    )
    async def list_cases(
        run_id: int,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[CaseOut]:
        """Per-case results of a run, ordered by case id."""
        await _run_or_404(store, run_id)
        cases: list[CaseResult] = await anyio.to_thread.run_sync(
            lambda: store.list_cases(run_id, limit=limit, offset=offset)
        )
        return [CaseOut(**vars_of(c)) for c in cases]

    return app


async def _run_or_404(store: Store, run_id: int) -> Run:
    run = await anyio.to_thread.run_sync(store.get_run, run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    return run
