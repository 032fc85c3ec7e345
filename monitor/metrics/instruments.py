"""In-process Prometheus instruments: what the runner sees while it talks to models.

Everything else on ``/metrics`` is read from the store at scrape time; single requests are
not stored, so these two live in the daemon's memory. They start from zero when the
daemon starts, as any Prometheus counter may (``rate()`` and ``histogram_quantile`` take
resets in their stride), and each replica counts only the requests it sent. They are
registered on the daemon's own registry, never the global one.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from monitor.adapters import OUTCOMES, RequestOutcome

# From a fast classifier on the same host (5 ms) to a long LLM generation (60 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RequestMetrics:
    """A ``RequestObserver`` that feeds ``monitor_model_request_duration_seconds`` and
    ``monitor_model_requests_total``.

    Every outcome of every model in ``models`` is exported from the start (at 0), so an
    error ratio reads 0 rather than "no data" before the first failure.
    """

    def __init__(self, registry: CollectorRegistry, *, models: Iterable[str] = ()) -> None:
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
        for model in models:
            for outcome in OUTCOMES:
                self._child(model, outcome)

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        duration, requests = self._children.get((model, outcome)) or self._child(model, outcome)
        duration.observe(seconds)
        requests.inc()

    def _child(self, model: str, outcome: str) -> tuple[Histogram, Counter]:
        child = (self._duration.labels(model), self._requests.labels(model, outcome))
        self._children[model, outcome] = child
        return child
