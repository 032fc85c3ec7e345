"""In-process Prometheus instruments: what the runner sees while it talks to models.

Everything else on ``/metrics`` is read from the store at scrape time; single requests are
not stored, so these two live in the daemon's memory. They start from zero when the
daemon starts, as any Prometheus counter may (``rate()`` and ``histogram_quantile`` take
resets in their stride), and each replica counts only the requests it sent. They are
registered on the daemon's own registry, never the global one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from monitor.adapters import OUTCOMES, RequestOutcome

_CHECK_EVERY = 60.0
"""Seconds between two looks for idle ad-hoc models."""

# From a fast classifier on the same host (5 ms) to a long LLM generation (60 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RequestMetrics:
    """A ``RequestObserver`` that feeds ``monitor_model_request_duration_seconds`` and
    ``monitor_model_requests_total``.

    Every outcome of every model in ``models`` is exported from the start (at 0), so an
    error ratio reads 0 rather than "no data" before the first failure. Other models (the
    ad-hoc models of ``POST /v1/runs``) appear with their first request and, with
    ``adhoc_ttl`` (seconds), are removed once idle that long: checked at most once a minute,
    when a request is observed, so their series end rather than pile up.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        models: Iterable[str] = (),
        adhoc_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._duration = Histogram(
            "monitor_model_request_duration_seconds",
            "Duration of requests to model endpoints, retries counted one by one.",
            labelnames=["model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._requests = Counter(
            "monitor_model_requests",
            "Requests to model endpoints by outcome (ok, rate_limited, http_status, "
            "timeout, connection, bad_response), retries counted one by one.",
            labelnames=["model", "outcome"],
            registry=registry,
        )
        # The labelled children, looked up once: labels() takes a lock and builds a key.
        self._children: dict[tuple[str, str], tuple[Histogram, Counter]] = {}
        self._configured = frozenset(models)
        for model in self._configured:
            for outcome in OUTCOMES:
                self._child(model, outcome)
        self._adhoc_ttl = adhoc_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # ad-hoc model -> when its last request came
        self._checked_at = clock()

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        if model not in self._configured:
            self._adhoc_request(model)
        duration, requests = self._children.get((model, outcome)) or self._child(model, outcome)
        duration.observe(seconds)
        requests.inc()

    def _adhoc_request(self, model: str) -> None:
        now = self._clock()
        with self._lock:
            self._seen[model] = now
            if self._adhoc_ttl is None or now - self._checked_at < _CHECK_EVERY:
                return
            self._checked_at = now
            idle = [m for m, at in self._seen.items() if now - at >= self._adhoc_ttl]
            for name in idle:
                del self._seen[name]
                self._forget(name)

    def _forget(self, model: str) -> None:
        """End every series of ``model``: its children go from both families."""
        for key in [key for key in self._children if key[0] == model]:
            del self._children[key]
            with contextlib.suppress(KeyError):
                self._requests.remove(*key)
        with contextlib.suppress(KeyError):
            self._duration.remove(model)

    def _child(self, model: str, outcome: str) -> tuple[Histogram, Counter]:
        child = (self._duration.labels(model), self._requests.labels(model, outcome))
        self._children[model, outcome] = child
        return child
