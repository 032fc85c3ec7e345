"""The model adapter interface: one case in, one prediction out.

An adapter turns a case into a request and an answer into a ``Prediction``; everything
about sending (limits, retries, back-off, error kinds) lives in its ``Transport``, one per
model, so connections are reused across runs and every protocol behaves the same under
load. Every failure is an ``AdapterError`` with a kind, never a message that could carry
a secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.adapters.observer import NO_OBSERVER, RequestObserver
from monitor.adapters.transport import Reply, Timing, Transport
from monitor.config import AnyModelConfig
from monitor.errors import AdapterError
from monitor.records import Case


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer to one case and what it cost.

    ``scores`` holds what the endpoint says about its confidence (class probabilities or a
    score) when it says anything; token counts come from the endpoint's own usage report
    and are ``None`` when it reports none. ``latency_seconds`` is the duration of the
    request that answered (for a batch, the whole batch's request).
    """

    value: Any
    latency_seconds: float
    scores: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    judged: Mapping[str, float | None] | None = None
    """The scores judge metrics gave this answer, by label (``None``: the judge failed);
    set by the runner's judging stage, never by an adapter."""


class Adapter(ABC):
    """Talks to one model endpoint."""

    def __init__(
        self,
        config: AnyModelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timing: Timing | None = None,
        observer: RequestObserver = NO_OBSERVER,
    ) -> None:
        self.config = config
        self.transport = Transport(
            config, transport=transport, headers=self._headers(), timing=timing, observer=observer
        )

    def _headers(self) -> dict[str, str]:
        """Headers this protocol adds to the configured ones (an API key, say)."""
        return {}

    async def predict(self, case: Case) -> Prediction:
        """Ask the model about ``case``; raises ``AdapterError`` on any failure."""
        try:
            return await self._predict(case)
        except KeyError as exc:
            raise AdapterError(
                "bad_request", f"the template names field {exc}, which the case lacks"
            ) from None

    async def judge(
        self, prompt: str, schema: dict[str, Any], *, logprobs: bool = False
    ) -> Prediction:
        """Ask this model, as a judge, ``prompt``; its answer should be JSON valid against
        ``schema``. A protocol without a structured-output mode gets the prompt as the
        case field ``input`` (fill it in the request template) and its answer is parsed
        and validated by the metric; the openai adapter sends ``schema`` as the
        endpoint's JSON schema and, with ``logprobs``, asks for the answer's token
        log-probabilities (returned as the prediction's ``scores``)."""
        return await self.predict(Case("judge", {"input": prompt}, None))

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], Prediction]:
        """Embed ``texts`` (one vector each, in order) and say what it cost (the
        ``Prediction``'s latency and tokens); only OpenAI-compatible ``/embeddings``
        endpoints can."""
        raise AdapterError(
            "bad_request", f"adapter {self.config.adapter!r} cannot embed; use adapter 'openai'"
        )

    @abstractmethod
    async def _predict(self, case: Case) -> Prediction:
        """One case's prediction. A ``KeyError`` means the case lacks a field the request
        template names; ``predict`` reports it as ``bad_request``."""

    async def _send(self, method: str, url: str, **kwargs: Any) -> Reply:
        return await self.transport.send(method, url, **kwargs)

    async def aclose(self) -> None:
        await self.transport.aclose()


def join_url(base: str, path: str) -> str:
    """``base`` (which may end in ``/``) followed by ``path``."""
    return base.rstrip("/") + "/" + path.lstrip("/")
