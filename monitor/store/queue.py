"""The queue and lease part of the store (``monitor.store.leases`` has the SQL).

:class:`RunQueue` shares its :class:`~monitor.store.Store`'s engine and transactions:
``store.queue`` is the narrow interface the daemon's scheduler, workers, sweep and
``monitor status`` are written against. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.store import leases
from monitor.store.leases import Claimed, Expired, Lease, Replica
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["Claimed", "Expired", "Lease", "Replica", "RunQueue"]


class RunQueue:
    """Queued runs, their leases and the replicas that hold them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def enqueue_slot(
        self,
        *,
        suite: str,
        model: str,
        slot_at: datetime,
        config_hash: str,
        at: datetime,
        only_if_idle: bool = True,
    ) -> int | str:
        """Queue the run of a schedule slot: its id, ``"busy"`` or ``"duplicate"``."""
        slot_at, at = ensure_utc(slot_at, name="slot_at"), ensure_utc(at, name="at")
        with self._store._writing(f"queueing a run of {suite!r} x {model!r}") as connection:
            return leases.enqueue_slot(
                connection,
                suite=suite,
                model=model,
                slot_at=slot_at,
                config_hash=config_hash,
                at=at,
                only_if_idle=only_if_idle,
            )

    def claim(self, *, owner: str, at: datetime, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` queued runs to ``owner`` (``FOR UPDATE SKIP LOCKED``)."""
        at = ensure_utc(at, name="at")
        with self._store._writing("claiming queued runs") as connection:
            return leases.claim(connection, owner=owner, at=at, limit=limit)

    def renew(self, run_ids: Sequence[int], *, owner: str, at: datetime) -> list[int]:
        """Refresh ``owner``'s leases on ``run_ids``; the ids of the runs still held."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"renewing {len(run_ids)} lease(s)") as connection:
            return leases.renew(connection, run_ids, owner=owner, at=at)

    def release(self, run_id: int, *, owner: str) -> bool:
        """Give up ``owner``'s lease on ``run_id``; False if it was not held."""
        with self._store._writing(f"releasing run {run_id}") as connection:
            return leases.release(connection, run_id, owner=owner)

    def expire(self, *, before: datetime, at: datetime, owner: str, reason: str) -> Expired:
        """Hand on the work of leases older than ``before`` (see ``leases.expire``)."""
        before, at = ensure_utc(before, name="before"), ensure_utc(at, name="at")
        with self._store._writing("expiring stale leases") as connection:
            return leases.expire(connection, before=before, at=at, owner=owner, reason=reason)

    def last_slots(self) -> dict[tuple[str, str], datetime]:
        with self._store._reading("reading the last schedule slots") as connection:
            return leases.last_slots(connection)

    def queued_count(self) -> int:
        with self._store._reading("counting queued runs") as connection:
            return leases.queued_count(connection)

    def leases(self) -> list[Lease]:
        with self._store._reading("listing leases") as connection:
            return leases.leases(connection)

    def announce(self, replica: Replica) -> None:
        """Insert or refresh this replica's row (``seen_at``, ``leader``)."""
        with self._store._writing(f"announcing replica {replica.name!r}") as connection:
            leases.upsert_replica(connection, replica)

    def withdraw(self, name: str) -> None:
        """Delete this replica's row: it stops."""
        with self._store._writing(f"withdrawing replica {name!r}") as connection:
            leases.delete_replica(connection, name)

    def replicas(self, *, seen_after: datetime | None = None) -> list[Replica]:
        with self._store._reading("listing replicas") as connection:
            return leases.list_replicas(connection, seen_after=seen_after)

    def forget(self, names: Sequence[str]) -> None:
        with self._store._writing("forgetting replicas") as connection:
            leases.forget_replicas(connection, names)
