"""The HTTP API: health, readiness, runs (native and compatible), suites, streams, drift,
alerts and ``/metrics``, on one FastAPI app.

One router per concern; handlers find the store and the registry on ``app.state`` and call
the synchronous store through a worker thread, so a slow query never stalls the event loop
the scheduler shares. Every route under ``/v1`` needs a token with ``read`` once a token
is configured (writes always need ``write``); ``/healthz``, ``/readyz`` and ``/metrics``
stay open. Request bodies are size-limited (``limits.BodyLimit``), and 422 answers name
the field (``problems``).

May import every stage below it (``config``, ``store``, ``verdicts``, ``streams``,
``alerts``, ``gate``, ``wire``, ``scoring``); the JSON shapes it shares with the gate live
in ``monitor.wire``. Never: ``daemon``, ``cli``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException

from monitor.api import alerts, audit, docs, health, openapi, requests, runs, verdicts
from monitor.api import streams as stream_routes
from monitor.api import suites as suite_routes
from monitor.api.auth import read_access
from monitor.api.endpoints import EndpointGuard
from monitor.api.guard import ResponseGuard, method_not_allowed
from monitor.api.ingest import InFlight
from monitor.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from monitor.api.problems import body_problems, validation_problems
from monitor.api.requests import Submit
from monitor.config import AnyModelConfig, SuiteConfig
from monitor.config.server import TokenConfig
from monitor.config.streams import StreamConfig
from monitor.store import Store
from monitor.store.ingest import IngestWriter


def create_app(
    store: Store,
    registry: CollectorRegistry,
    *,
    version: str,
    streams: Sequence[StreamConfig] = (),
    tokens: Sequence[TokenConfig] = (),
    suites: Sequence[SuiteConfig] = (),
    models: Sequence[AnyModelConfig] = (),
    allowed_endpoint_prefixes: Sequence[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    open_reads: bool = False,
    submit: Submit | None = None,
    cluster: Callable[[], Mapping[str, object]] | None = None,
) -> FastAPI:
    """The daemon's HTTP app. ``registry`` is the daemon's own, never the global one;
    ``tokens`` guard the routes; ``submit`` hands runs queued by ``POST /v1/runs`` to
    the daemon (without it, that route answers 503); ``cluster`` says which replica
    answers and whether it leads (``/readyz``)."""
    app = docs.offline_app(
        title="monitor", version=version, description="Model evaluation and drift monitor."
    )
    app.state.store = store
    app.state.registry = registry
    app.state.streams = {stream.name: stream for stream in streams}
    app.state.tokens = tuple(tokens)
    app.state.open_reads = open_reads
    app.state.suites = {suite.name: suite for suite in suites}
    app.state.models = {model.name: model for model in models}
    app.state.endpoint_guard = EndpointGuard(allowed_endpoint_prefixes)
    app.state.submit = submit
    app.state.cluster = cluster
    app.state.ingest_writer = IngestWriter(store)
    app.state.ingest_in_flight = InFlight()
    app.add_middleware(
        BodyLimit, default=max_body_bytes, per_path=stream_routes.body_limits(streams)
    )
    # Outermost of ours: nosniff on every answer, the 413s and the 500s included.
    app.add_middleware(ResponseGuard)
    app.add_exception_handler(RequestValidationError, validation_problems)
    app.add_exception_handler(405, method_not_allowed)
    app.add_exception_handler(HTTPException, body_problems)
    guarded = [Depends(read_access)]
    app.include_router(health.router)
    app.include_router(requests.router, dependencies=guarded)
    app.include_router(runs.router, dependencies=guarded)
    app.include_router(verdicts.router, dependencies=guarded)
    app.include_router(suite_routes.router, dependencies=guarded)
    app.include_router(alerts.router, dependencies=guarded)
    app.include_router(audit.router, dependencies=guarded)
    app.include_router(stream_routes.router, dependencies=guarded)
    openapi.install(app)
    return app


__all__ = ["create_app"]
