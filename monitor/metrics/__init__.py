"""Prometheus metrics: what ``/metrics`` shows.

``collector`` reads the store at scrape time (scores with intervals, runs, verdicts,
drift, alerts, the outbox) into a daemon-owned ``CollectorRegistry``; ``instruments``
records what only the process sees (request latency and outcomes, from the adapters'
observer). The metric names and their help texts are documented in docs/metrics.md and
pinned by tests/metrics.

May import: the shared vocabulary, ``store``, ``adapters`` (its observer interface) and
prometheus_client. Never: ``api``, ``daemon``, ``cli``.
"""
