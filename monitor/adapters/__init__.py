"""Model adapters: how each kind of endpoint is asked for a prediction.

One module per protocol (``openai``, ``http``, ``mlflow``, ``kserve``) on a shared
base (retries, back-off, ``Retry-After``, adaptive concurrency, rate limit), over
``httpx.AsyncClient`` on aiohttp (httpx-aiohttp, the default) or on httpx's own transport.

May import: the shared vocabulary, ``config`` and httpx. Never: ``store``, ``runs``,
``api``, ``daemon``, ``cli``.
"""

from __future__ import annotations

import httpx

from monitor.adapters.base import Adapter, Prediction
from monitor.adapters.http import HttpAdapter
from monitor.adapters.kserve import KServeAdapter
from monitor.adapters.mlflow import MlflowAdapter
from monitor.adapters.observer import (
    NO_OBSERVER,
    OUTCOMES,
    NoObserver,
    RequestObserver,
    RequestOutcome,
)
from monitor.adapters.openai import OpenAIAdapter
from monitor.adapters.transport import Timing, Transport
from monitor.config import AnyModelConfig

ADAPTERS: dict[str, type[Adapter]] = {
    "http": HttpAdapter,
    "kserve-v2": KServeAdapter,
    "mlflow": MlflowAdapter,
    "openai": OpenAIAdapter,
}


def build_adapter(
    config: AnyModelConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timing: Timing | None = None,
    observer: RequestObserver = NO_OBSERVER,
) -> Adapter:
    """The adapter ``config.adapter`` names, with its own HTTP client; ``observer`` hears
    about every request it sends."""
    return ADAPTERS[config.adapter](config, transport=transport, timing=timing, observer=observer)


__all__ = [
    "ADAPTERS",
    "NO_OBSERVER",
    "OUTCOMES",
    "Adapter",
    "HttpAdapter",
    "KServeAdapter",
    "MlflowAdapter",
    "NoObserver",
    "OpenAIAdapter",
    "Prediction",
    "RequestObserver",
    "RequestOutcome",
    "Timing",
    "Transport",
    "build_adapter",
]
