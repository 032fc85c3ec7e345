"""Model adapters: how each kind of endpoint is asked for a prediction."""

from __future__ import annotations

import httpx

from monitor.adapters.base import Adapter, Prediction
from monitor.adapters.http import HttpAdapter
from monitor.config import HttpModelConfig

ADAPTERS: dict[str, type[Adapter]] = {"http": HttpAdapter}


def build_adapter(
    config: HttpModelConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> Adapter:
    """The adapter ``config.adapter`` names, with its own HTTP client."""
    return ADAPTERS[config.adapter](config, transport=transport)


__all__ = ["ADAPTERS", "Adapter", "HttpAdapter", "Prediction", "build_adapter"]
