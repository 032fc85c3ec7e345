"""The stream window queue part of the store (``monitor.store.window_leases`` has the SQL).

:class:`WindowQueue` shares its :class:`~monitor.store.Store`'s engine and transactions:
``store.windows`` is the narrow interface the leader's stream jobs (queueing due
windows), every replica's window worker (claiming and judging them), the sweep and
``monitor status`` are written against. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.store import window_leases as sql
from monitor.store.types import ensure_utc
from monitor.store.window_leases import ClaimedWindow, DueWindow, WindowCount, WindowLease

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["ClaimedWindow", "DueWindow", "WindowCount", "WindowLease", "WindowQueue"]


class WindowQueue:
    """Queued stream windows and the leases replicas hold on them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def enqueue(self, due: Sequence[DueWindow], *, at: datetime) -> list[int]:
        """Queue ``due`` windows (one row per stream x window key); the new rows' ids."""
        at = ensure_utc(at, name="at")
        if not due:
            return []
        with self._store._writing(f"queueing {len(due)} window(s)") as connection:
            return sql.enqueue(connection, due, at=at)

    def claim(
        self, *, owner: str, at: datetime, limit: int, streams: Sequence[str]
    ) -> list[ClaimedWindow]:
        """Lease up to ``limit`` queued windows of ``streams`` to ``owner``, at most one
        per stream, in window order (``FOR UPDATE SKIP LOCKED``)."""
        at = ensure_utc(at, name="at")
        with self._store._reading("looking for queued windows") as connection:
            if limit < 1 or not sql.claimable(connection, streams):
                return []
        with self._store._writing("claiming queued windows") as connection:
            return sql.claim(connection, owner=owner, at=at, limit=limit, streams=streams)

    def renew(self, window_ids: Sequence[int], *, owner: str, at: datetime) -> list[int]:
        """Refresh ``owner``'s leases on ``window_ids``; the ids still held."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"renewing {len(window_ids)} window lease(s)") as connection:
            return sql.renew(connection, window_ids, owner=owner, at=at)

    def finish(self, window_id: int, *, owner: str) -> bool:
        """Delete a judged window's row; False if ``owner`` no longer held it."""
        with self._store._writing(f"finishing window {window_id}") as connection:
            return sql.finish(connection, window_id, owner=owner)

    def release(self, window_id: int, *, owner: str) -> bool:
        """Put a window ``owner`` holds back in the queue; False if it was not held."""
        with self._store._writing(f"releasing window {window_id}") as connection:
            return sql.release(connection, window_id, owner=owner)

    def release_all(self, *, streams: Sequence[str] | None = None) -> list[int]:
        """Put every leased window back in the queue (a single-instance store's start)."""
        with self._store._writing("releasing the window leases") as connection:
            return sql.release_all(connection, streams=streams)

    def expire(self, *, before: datetime) -> list[WindowLease]:
        """Put windows whose lease is older than ``before`` back in the queue."""
        before = ensure_utc(before, name="before")
        with self._store._writing("expiring stale window leases") as connection:
            return sql.expire(connection, before=before)

    def last_key(self, stream: str, kind: str) -> str | None:
        """The key of the stream's newest queued window of ``kind``."""
        with self._store._reading(f"reading the queued windows of {stream!r}") as connection:
            return sql.last_key(connection, stream, kind)

    def counts(self) -> list[WindowCount]:
        with self._store._reading("counting queued windows") as connection:
            return sql.counts(connection)

    def leases(self) -> list[WindowLease]:
        with self._store._reading("listing window leases") as connection:
            return sql.leases(connection)
