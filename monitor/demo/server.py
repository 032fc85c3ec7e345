"""Serve the demo model over HTTP, inside the caller's event loop.

``monitor demo`` runs this server and the daemon in one asyncio loop, so the server is
started as a task rather than with ``uvicorn.run``: :func:`serve_demo_model` returns once
the socket is bound and reports the real URL (port 0 picks a free port). The daemon owns
process signals, so the uvicorn server here never installs handlers of its own.

Routes::

    POST /predict      {"features": [13 numbers]}
                       -> {"prediction": ..., "probabilities": {...}, "usage": {...}}
    GET  /healthz      -> {"status": "ok"}
    GET  /degradation  -> {"level": p}
    POST /degradation  {"level": p in 0..1, or null to follow the time ramp} -> {"level": p}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import FastAPI
from pydantic import AllowInfNan, BaseModel, Field, Strict

from monitor.daemon.serving import EmbeddedServer, start_server
from monitor.demo.dataset import N_FEATURES
from monitor.demo.model import DEFAULT_DEGRADE_RAMP, DemoModel

logger = logging.getLogger("monitor.demo")

# Strict: "1.5" and true are not numbers here, even though pydantic's lax mode would coerce.
Feature = Annotated[float, Strict(), AllowInfNan(False)]


class PredictRequest(BaseModel):
    """Body of ``POST /predict``."""

    features: list[Feature] = Field(
        min_length=N_FEATURES,
        max_length=N_FEATURES,
        description=f"the {N_FEATURES} wine measurements, in load_wine's column order",
    )


class Usage(BaseModel):
    """What a request "cost", the way metered model APIs report it: the demo bills one
    prompt token per feature and one completion token per label, so that ``monitor demo``
    has tokens and a cost to show (the demo config reads them and sets a price)."""

    prompt_tokens: int = N_FEATURES
    completion_tokens: int = 1


class PredictResponse(BaseModel):
    """Answer of ``POST /predict``: the label, every class's probability, the usage."""

    prediction: str
    probabilities: dict[str, float]
    usage: Usage = Field(default_factory=Usage)


class Degradation(BaseModel):
    """Body and answer of ``/degradation``; ``null`` in a request resumes the time ramp."""

    level: Annotated[float, AllowInfNan(False)] | None = Field(ge=0.0, le=1.0)


def create_demo_app(model: DemoModel) -> FastAPI:
    """The ASGI app serving ``model``. Handlers are ``async`` so that prediction runs in
    the event loop (it takes well under a millisecond) and never on a worker thread."""
    app = FastAPI(title="monitor demo model", description="A wine classifier to watch.")

    @app.post("/predict")
    async def predict(request: PredictRequest) -> PredictResponse:
        label, probabilities = model.predict(request.features)
        return PredictResponse(prediction=label, probabilities=probabilities)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/degradation")
    async def get_degradation() -> Degradation:
        return Degradation(level=model.level())

    @app.post("/degradation")
    async def set_degradation(request: Degradation) -> Degradation:
        model.set_level(request.level)
        return Degradation(level=model.level())

    return app


async def serve_demo_model(
    model: DemoModel, *, host: str = "127.0.0.1", port: int = 0
) -> EmbeddedServer:
    """Start serving ``model`` in the running event loop and return once it listens.

    Raises ``StartupError`` when the server cannot bind (port in use, bad host).
    """
    return await start_server(create_demo_app(model), host=host, port=port, what="demo model")


def run_demo_model(
    host: str = "127.0.0.1",
    port: int = 8000,
    degrade_after: timedelta | None = None,
    *,
    degrade_ramp: timedelta = DEFAULT_DEGRADE_RAMP,
    recover_after: timedelta | None = None,
    on_ready: Callable[[EmbeddedServer], None] | None = None,
) -> None:
    """Train and serve the demo model until Ctrl-C or SIGTERM (``monitor demo --model-only``).

    Blocking; owns the event loop and the signals. ``on_ready`` is called once the server
    listens, for example to print its URL.
    """
    with contextlib.suppress(KeyboardInterrupt):
        model = DemoModel(
            degrade_after=degrade_after, degrade_ramp=degrade_ramp, recover_after=recover_after
        )
        asyncio.run(_run_until_signalled(model, host, port, on_ready))


async def _run_until_signalled(
    model: DemoModel,
    host: str,
    port: int,
    on_ready: Callable[[EmbeddedServer], None] | None,
) -> None:
    """Serve until SIGTERM (or cancellation by ``asyncio.run`` on Ctrl-C), then stop."""
    server = await serve_demo_model(model, host=host, port=port)
    model.restart_clock()
    logger.info("demo model serving on %s", server.url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Windows has no add_signal_handler, and only the main thread may set one.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        if on_ready is not None:
            on_ready(server)
        await stopping.wait()
    finally:
        await server.stop()
