"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from monitor.store import Store

router = APIRouter()


class NotReady(BaseModel):
    status: Literal["unavailable"]
    reason: str
    replica: str | None = None
    leader: bool | None = None


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz", tags=["health"], responses={503: {"description": "Not ready", "model": NotReady}}
)
async def readyz(request: Request) -> JSONResponse:
    """The store answers and its schema is at the latest migration. A daemon adds which
    replica answered and whether it leads (``"replica"``, ``"leader"``): every replica
    is ready to serve and to claim work, leader or not."""
    store: Store = request.app.state.store
    reason = await anyio.to_thread.run_sync(store.check_ready)
    cluster = request.app.state.cluster
    about = dict(cluster()) if cluster is not None else {}
    if reason is None:
        return JSONResponse({"status": "ready", **about})
    return JSONResponse({"status": "unavailable", "reason": reason, **about}, status_code=503)


@router.get("/metrics", tags=["metrics"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition, negotiated from the Accept header. The collector queries the
    store, so it runs on a worker thread."""
    registry: CollectorRegistry = request.app.state.registry
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = await anyio.to_thread.run_sync(encoder, registry)
    return Response(body, media_type=content_type)
