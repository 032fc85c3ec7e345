"""The model adapter interface: one case in, one prediction out, over HTTP.

An adapter owns its ``httpx.AsyncClient`` (so connections are reused across runs), limits
its own concurrency, and turns every failure into an ``AdapterError`` with a kind, never
a message that could carry a secret.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.config import HttpModelConfig
from monitor.datasets import Case
from monitor.errors import AdapterError


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer to one case and what it cost.

    ``scores`` holds what the endpoint says about its confidence (class probabilities or a
    score) when it says anything; token counts come from the endpoint's own usage report
    and are ``None`` when it reports none.
    """

    value: Any
    latency_seconds: float
    scores: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Adapter(ABC):
    """Talks to one model endpoint."""

    def __init__(
        self, config: HttpModelConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._limit = asyncio.Semaphore(config.concurrency)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=config.timeout.total_seconds(),
            headers={k: v.get_secret_value() for k, v in config.headers.items()},
            limits=httpx.Limits(max_connections=config.concurrency),
            follow_redirects=False,
        )

    async def predict(self, case: Case) -> Prediction:
        """Ask the model about ``case``; at most ``concurrency`` requests at once."""
        async with self._limit:
            started = time.perf_counter()
            prediction = await self._predict(case)
        return replace(prediction, latency_seconds=time.perf_counter() - started)

    @abstractmethod
    async def _predict(self, case: Case) -> Prediction:
        """One request for one case; raise ``AdapterError`` on any failure. The latency
        is measured by ``predict`` and overwrites whatever this returns."""

    async def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON body, mapping failures to kinds."""
        where = f"{method} {_display(url)}"
        try:
            response = await self._client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise AdapterError("timeout", f"{where}: no answer within the timeout") from None
        except httpx.TransportError as exc:
            raise AdapterError("connection", f"{where}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise AdapterError("http_status", f"{where}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise AdapterError("bad_response", f"{where}: the answer is not JSON") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def _display(url: str) -> str:
    """The URL without credentials or query string, which may hold keys."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
