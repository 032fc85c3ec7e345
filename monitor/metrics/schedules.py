"""``monitor_schedule_slots_skipped_total``: scheduled runs that never happened, and why.

In process memory like the request instruments (a slot is skipped by the replica that
scheduled it, and may never reach the store), so it starts from zero with the daemon.
Every reason of every configured suite x model is exported from the start, at 0, so
``increase()`` sees the first skip.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

SKIP_REASONS = ("store_unavailable", "misfire", "busy")
"""``store_unavailable``: due while the store did not answer, and past ``misfire_grace``
when it did (or beyond the slots kept meanwhile); ``misfire``: the scheduler itself came
later than ``misfire_grace``; ``busy``: the previous run of the suite x model was still
going."""


class ScheduleMetrics:
    """Counts skipped slots per suite, model and reason on the daemon's registry."""

    def __init__(
        self, registry: CollectorRegistry, *, pairs: Iterable[tuple[str, str]] = ()
    ) -> None:
        self._skipped = Counter(
            "monitor_schedule_slots_skipped",
            "Scheduled runs that were never created, by reason (store_unavailable, misfire, busy).",
            labelnames=["suite", "model", "reason"],
            registry=registry,
        )
        for suite, model in pairs:
            for reason in SKIP_REASONS:
                self._skipped.labels(suite, model, reason)

    def skipped(self, suite: str, model: str, reason: str, count: int = 1) -> None:
        self._skipped.labels(suite, model, reason).inc(count)
