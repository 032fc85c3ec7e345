"""The retention pass: every ``[store.retention] every``, delete what each kind has kept
longer than configured, one short transaction per batch (``Store.retention.expire``).

One replica deletes: ``leader`` says whether this process is the one (the daemon passes
its cluster leadership, ``monitor.daemon.cluster``; a single SQLite daemon always leads).
Deleting twice would be harmless (the second finds nothing) but doubles the load on the
store. The pass stops between batches when the
daemon shuts down, and a later pass continues where it stopped: nothing is half-deleted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from monitor.clock import Clock, utc_now
from monitor.config import RetentionConfig
from monitor.store.parts import HasRetention
from monitor.store.retention_store import RETENTION_ORDER, ExpiringKind

logger = logging.getLogger(__name__)

__all__ = ["ORDER", "Retention", "always"]

ORDER = RETENTION_ORDER
"""Verdicts go before runs: a run a kept verdict refers to is kept."""


_LABELS = {
    "verdicts": "verdicts",
    "runs": "runs and case results",
    "drift_reports": "drift reports",
    "alert_history": "alert history entries",
    "outbox": "notifications",
}


def always() -> bool:
    """The leadership hook of a single instance: it always leads."""
    return True


class Retention:
    """Deletes expired history of ``store`` as ``config`` says, when ``leader()``."""

    def __init__(
        self,
        config: RetentionConfig,
        store: HasRetention,
        *,
        clock: Clock = utc_now,
        leader: Callable[[], bool] = always,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._leader = leader
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a pass in progress end after its current batch (thread-safe)."""
        self._stopping.set()

    def run_once(self) -> dict[str, int]:
        """One pass over every kind, oldest rows first; return the rows deleted per kind
        (for runs, runs and case results). Blocking: the daemon runs it in a worker
        thread. Store errors propagate; the next pass starts over."""
        config = self._config
        if not config.enabled or not self._leader():
            return {}
        now = self._clock()
        keep = {
            "verdicts": config.verdicts,
            "runs": config.runs,
            "drift_reports": config.drift_reports,
            "alert_history": config.alert_history,
            "outbox": config.outbox,
        }
        deleted: dict[str, int] = {}
        for kind in ORDER:
            if self._stopping.is_set():
                break
            deleted[kind] = self._expire(kind, before=now - keep[kind])
        if any(deleted.values()):
            logger.info(
                "retention: deleted %s",
                ", ".join(f"{n} {_LABELS[kind]}" for kind, n in deleted.items() if n),
            )
        return deleted

    def _expire(self, kind: ExpiringKind, *, before: datetime) -> int:
        """Batches of ``kind`` until one comes back short (for runs, empty: a batch of
        runs is also cut short by ``max_cases``)."""
        limit, total = self._config.batch_size, 0
        while not self._stopping.is_set():
            count = self._store.retention.expire(
                kind, before=before, limit=limit, max_cases=self._config.max_cases
            )
            total += count
            if count == 0 or (kind != "runs" and count < limit):
                break
        return total
