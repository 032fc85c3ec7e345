"""What the transport tells an observer about every request it sends to a model.

The daemon turns these calls into Prometheus instruments (``monitor.metrics.instruments``); the
adapters never import a metrics library, and ``monitor bench`` or a test that needs no
metrics simply keeps the default, which does nothing.

One call per request sent over the network, retries included, so a burst of 429 answers
shows as ``rate_limited`` requests even when the retries finally succeed. A case that
fails before anything is sent (``bad_request``) is no request and is not observed.
"""

from __future__ import annotations

from typing import Literal, Protocol

RequestOutcome = Literal[
    "ok", "rate_limited", "http_status", "timeout", "connection", "bad_response"
]
"""How one request ended: ``ok`` (2xx with a JSON body), ``rate_limited`` (HTTP 429),
``http_status`` (any other status of 400 or more), ``timeout``, ``connection`` (refused,
reset, DNS), ``bad_response`` (the body is not JSON). An answer that is JSON but lacks what
the adapter reads is an ``ok`` request; the case fails with ``bad_response``."""

OUTCOMES: tuple[RequestOutcome, ...] = (
    "ok",
    "rate_limited",
    "http_status",
    "timeout",
    "connection",
    "bad_response",
)


class RequestObserver(Protocol):
    """Receives one call per request to a model endpoint. Called on the event loop: an
    implementation must be quick and must not block."""

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        """``model`` sent a request that ended with ``outcome`` after ``seconds`` (from
        sending to the answer or the failure; waits for a free slot, the rate limit and
        back-off are excluded)."""


class NoObserver:
    """The default observer: ignores every request."""

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        pass


NO_OBSERVER = NoObserver()
