"""The ``store.alerts`` part of the store: alert states and history, the notification
outbox and its dead letters, silences (``monitor.store.alerts`` has the SQL).

:class:`AlertStore` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``). ``evaluating()`` is the one that
spans the caller's work: an :class:`AlertEvaluation` reads the states and stores the
transitions in one transaction that replicas take one at a time, so an evaluation never
works from states another replica has changed since.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from monitor.alerts.engine import AlertState, Phase, Transition
from monitor.alerts.records import HistoryEntry, OutboxMessage, OutboxStats, OutboxStatus, Silence
from monitor.store import alerts, audit
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["AlertEvaluation", "AlertStore"]


class AlertEvaluation:
    """One alert evaluation's transaction: what it reads and what it stores, all on one
    connection, under the evaluation lock (see ``AlertStore.evaluating``)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def alert_states(self) -> list[AlertState]:
        """Every stored alert state, most recently updated first."""
        return alerts.load_states(self._connection)

    def silences(self, *, active_at: datetime) -> list[Silence]:
        """Silences not over by ``active_at``."""
        return alerts.silences(self._connection, active_at=active_at)

    def last_notified(self, sinks: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """When each (fingerprint, sink) last had a notification queued."""
        return alerts.last_sent(self._connection, sinks)

    def pending_notifications(self, sinks: Sequence[str]) -> set[tuple[str, str]]:
        """The (fingerprint, sink) pairs with a notification still waiting."""
        return alerts.pending_keys(self._connection, sinks)

    def notification_sequences(self, fingerprints: Sequence[str]) -> dict[str, int]:
        """The highest notification ``sequence`` queued so far per fingerprint."""
        return alerts.sequences(self._connection, fingerprints)

    def apply(self, transitions: Sequence[Transition], messages: Sequence[OutboxMessage]) -> None:
        """Store the state changes and their outbox rows (at commit, with the rest)."""
        alerts.apply_transitions(self._connection, transitions, messages)


class AlertStore:
    """Alert states and history, the notification outbox and its dead letters, silences."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def alert_states(self, phase: Phase | None = None) -> list[AlertState]:
        """Stored alert states (optionally of one phase), most recently updated first."""
        with self._store._reading("reading alert states") as connection:
            return alerts.load_states(connection, phase)

    @contextmanager
    def evaluating(self) -> Iterator[AlertEvaluation]:
        """One evaluation as ONE write transaction, serialised across replicas: a
        transaction-scoped advisory lock on PostgreSQL, the write lock on SQLite. The
        states read through it are current until it commits, so sequence numbers read
        through it are the next free ones; an exception rolls everything back."""
        with self._store._writing("evaluating alerts") as connection:
            alerts.lock_evaluation(connection)
            yield AlertEvaluation(connection)

    def apply_alert_transitions(
        self, transitions: Sequence[Transition], messages: Sequence[OutboxMessage]
    ) -> None:
        """Store alert state changes and their outbox rows in ONE transaction."""
        with self._store._writing("storing alert state changes") as connection:
            alerts.apply_transitions(connection, transitions, messages)

    def enqueue_notifications(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue notifications that change no state (test sends, Alertmanager refreshes)."""
        with self._store._writing("queueing notifications") as connection:
            alerts.enqueue(connection, messages)

    def last_notified(self, sinks: Sequence[str]) -> dict[tuple[str, str], datetime]:
        """When each (fingerprint, sink) last had a notification queued."""
        with self._store._reading("reading notification times") as connection:
            return alerts.last_sent(connection, sinks)

    def notification_sequences(self, fingerprints: Sequence[str]) -> dict[str, int]:
        """The highest notification ``sequence`` queued so far per fingerprint."""
        with self._store._reading("reading notification sequences") as connection:
            return alerts.sequences(connection, fingerprints)

    def pending_notifications(self, sinks: Sequence[str]) -> set[tuple[str, str]]:
        """The (fingerprint, sink) pairs with a notification still waiting."""
        with self._store._reading("reading pending notifications") as connection:
            return alerts.pending_keys(connection, sinks)

    def dead_letters(self, *, sink: str | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Dead letters newest first, optionally of one sink."""
        return self.list_notifications(status=OutboxStatus.DEAD, sink=sink, limit=limit)

    def redrive_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        sink: str | None = None,
        at: datetime,
        by: str,
        comment: str = "",
    ) -> list[OutboxMessage]:
        """Queue dead letters (``ids``, or every one; optionally of one sink) again."""
        with self._store._writing("redriving dead letters") as connection:
            return alerts.redrive_dead(
                connection, ids=ids, sink=sink, at=ensure_utc(at), by=by, comment=comment
            )

    def discard_dead_letters(
        self,
        *,
        ids: Sequence[str] | None = None,
        sink: str | None = None,
        at: datetime,
        by: str,
        comment: str = "",
    ) -> list[OutboxMessage]:
        """Give up on dead letters (``ids``, or every one; optionally of one sink)."""
        with self._store._writing("discarding dead letters") as connection:
            return alerts.discard_dead(
                connection, ids=ids, sink=sink, at=ensure_utc(at), by=by, comment=comment
            )

    def claim_notifications(
        self, *, now: datetime, lease_until: datetime, limit: int = 20
    ) -> list[OutboxMessage]:
        """Lease due outbox rows for delivery one per sink and alert, in order."""
        now, lease_until = ensure_utc(now, name="now"), ensure_utc(lease_until, name="lease_until")
        with self._store._writing("claiming notifications") as connection:
            return alerts.claim_due(connection, now=now, lease_until=lease_until, limit=limit)

    def record_delivery_attempt(
        self,
        message_id: str,
        *,
        at: datetime,
        status: OutboxStatus,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Count one delivery attempt: delivered, retry at ``next_attempt_at``, or dead."""
        with self._store._writing(f"recording delivery of {message_id}") as connection:
            alerts.record_attempt(
                connection,
                message_id,
                at=ensure_utc(at, name="at"),
                status=status,
                next_attempt_at=next_attempt_at,
                error=error,
            )

    def list_notifications(
        self, *, status: OutboxStatus | None = None, sink: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        """Outbox rows newest first, optionally of one status (``dead``: dead letters)
        and one sink."""
        with self._store._reading("listing notifications") as connection:
            return alerts.list_outbox(connection, status=status, sink=sink, limit=limit)

    def outbox_stats(self) -> OutboxStats:
        """Outbox rows by status and failed attempts, for metrics."""
        with self._store._reading("counting notifications") as connection:
            return alerts.outbox_stats(connection)

    def add_silence(
        self,
        *,
        matchers: dict[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str = "",
    ) -> int:
        """Silence direct sinks for alerts matching ``matchers`` until ``ends_at``; the
        silence goes into the audit log in the same transaction."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        starts_at, ends_at = ensure_utc(starts_at, name="starts_at"), ensure_utc(ends_at)
        if ends_at <= starts_at:
            raise ValueError(f"ends_at must be after starts_at, got: {ends_at.isoformat()}")
        with self._store._writing("adding a silence") as connection:
            silence_id = alerts.add_silence(
                connection,
                matchers=matchers,
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=created_by,
                comment=comment,
            )
            audit.append(
                connection,
                at=starts_at,
                actor=created_by,
                action="alert.silenced",
                target=f"silence {silence_id}",
                reason=comment,
                details={
                    "silence_id": silence_id,
                    "matchers": matchers,
                    "starts_at": starts_at.isoformat(),
                    "ends_at": ends_at.isoformat(),
                },
            )
            return silence_id

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """Silences newest first; with ``active_at``, only those not over by then."""
        with self._store._reading("reading silences") as connection:
            return alerts.silences(connection, active_at=active_at)

    def alert_history(
        self, *, fingerprint: str | None = None, limit: int = 100
    ) -> list[HistoryEntry]:
        """Alert phase changes, newest first."""
        with self._store._reading("reading alert history") as connection:
            return alerts.history(connection, fingerprint=fingerprint, limit=limit)
