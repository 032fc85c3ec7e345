"""The ``store.retention`` part of the store: retention batches and the rebuild of run
rollups (``retention`` and ``rollups`` have the SQL).

:class:`RetentionStore` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from monitor.store import retention, rollups
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["RETENTION_ORDER", "ExpiringKind", "RetentionStore"]


class RetentionStore:
    """Retention batches and the rebuild of run rollups."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def expire(
        self, kind: ExpiringKind, *, before: datetime, limit: int = 500, max_cases: int = 5000
    ) -> int:
        """Delete one batch (at most ``limit`` rows; for runs, about ``max_cases`` case
        rows) of ``kind`` older than ``before``, in one short write transaction; return
        how many rows went. Call again until it returns less than ``limit``. What is never
        deleted is listed in ``monitor.store.retention``."""
        before = ensure_utc(before, name="before")
        if kind != "runs" and kind not in _EXPIRE:
            raise ValueError(f"kind must be one of {', '.join(RETENTION_ORDER)}, got: {kind!r}")
        if limit < 1 or max_cases < 1:
            raise ValueError(f"need limit and max_cases >= 1, got: {limit}, {max_cases}")
        with self._store._writing(f"deleting expired {kind.replace('_', ' ')}") as connection:
            if kind == "runs":
                return retention.delete_runs(
                    connection, before=before, limit=limit, max_cases=max_cases
                )
            return _EXPIRE[kind](connection, before=before, limit=limit)

    def rebuild_rollups(self) -> int:
        """Recompute every suite x model's rollup row from the stored runs; return how many
        pairs. For rows written around the store (bulk loads); the writes keep them."""
        with self._store._writing("rebuilding run rollups") as connection:
            return rollups.rebuild(connection)


ExpiringKind = Literal["verdicts", "runs", "drift_reports", "alert_history", "outbox"]
"""What ``RetentionStore.expire`` deletes, in the order a retention pass goes: verdicts before runs,
since a run a verdict refers to is kept."""

RETENTION_ORDER: tuple[ExpiringKind, ...] = (
    "verdicts",
    "runs",
    "drift_reports",
    "alert_history",
    "outbox",
)

_EXPIRE: dict[str, Callable[..., int]] = {
    "verdicts": retention.delete_verdicts,
    "drift_reports": retention.delete_drift_reports,
    "alert_history": retention.delete_alert_history,
    "outbox": retention.delete_outbox,
}
