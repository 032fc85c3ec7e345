"""The HTTP API: health, readiness, runs, streams, drift, alerts and ``/metrics``, on one
FastAPI app.

One router per concern; handlers find the store and the registry on ``app.state`` and call
the synchronous store through a worker thread, so a slow query never stalls the event loop
the scheduler shares.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from monitor.api import alerts, health, runs, verdicts
from monitor.api import streams as stream_routes
from monitor.config.server import TokenConfig
from monitor.config.streams import StreamConfig
from monitor.store import Store


def create_app(
    store: Store,
    registry: CollectorRegistry,
    *,
    version: str,
    streams: Sequence[StreamConfig] = (),
    tokens: Sequence[TokenConfig] = (),
) -> FastAPI:
    """The daemon's HTTP app. ``registry`` is the daemon's own, never the global one;
    ``tokens`` guard the routes that write (ingest)."""
    app = FastAPI(
        title="monitor", version=version, description="Model evaluation and drift monitor."
    )
    app.state.store = store
    app.state.registry = registry
    app.state.streams = {stream.name: stream for stream in streams}
    app.state.tokens = tuple(tokens)
    app.include_router(health.router)
    app.include_router(runs.router)
    app.include_router(verdicts.router)
    app.include_router(alerts.router)
    app.include_router(stream_routes.router)
    return app


__all__ = ["create_app"]
