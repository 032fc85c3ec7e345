"""Statements for alerting: engine state, history, the outbox and silences.

Each function takes an open connection; ``Store`` decides the transaction. The one rule
that matters: ``apply_transitions`` writes new states, their history and their outbox
rows together, so a notification exists if and only if its state change does.

An evaluation (load the states, evaluate, store the transitions with their numbered
notifications) is one transaction that first calls ``lock_evaluation``: a
transaction-scoped advisory lock on PostgreSQL, per database and schema, so replicas
evaluate one at a time and each sees the states the one before it stored (SQLite's
``BEGIN IMMEDIATE`` write lock already serialises them). Without it a leader's timer tick
could overwrite a state another replica had just resolved, and two replicas could give
two notifications of one alert the same ``sequence``.

Delivery is keyed by alert: per sink and fingerprint, a claim first marks every pending
row that has a newer row ``superseded`` (coalescing: only the latest state is sent), then
takes the remaining pending row only if no row of the same sink and fingerprint is
leased, so one alert's notifications are never in flight at once nor sent out of order.
Claims are serialised (a transaction-scoped advisory lock on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite), which makes that check safe across replicas; ``SKIP LOCKED``
stays as a second guard. A claim is a lease (``claimed_until``): a worker that dies
mid-send leaves the row to be claimed again when the lease ends, which is what makes
delivery at-least-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, or_, select, text, update

from monitor.alerts.engine import AlertState, Phase, Transition
from monitor.alerts.records import (
    HistoryEntry,
    OutboxMessage,
    OutboxStats,
    OutboxStatus,
    Silence,
)
from monitor.store import retention
from monitor.store.engine import dialect_insert
from monitor.store.tables import alert_history, alert_outbox, alert_silences, alert_states

__all__ = [
    "add_silence",
    "apply_transitions",
    "claim_due",
    "discard_dead",
    "history",
    "last_sent",
    "list_outbox",
    "load_states",
    "lock_evaluation",
    "outbox_stats",
    "pending_keys",
    "record_attempt",
    "redrive_dead",
    "sequences",
    "silences",
]

# The key of PostgreSQL's advisory lock that serialises outbox claims ("mon-outb").
_CLAIM_LOCK = 0x6D6F6E2D6F757462

# Serialises alert evaluations; keyed by database and schema, so stores sharing a server
# do not wait on each other.
_EVALUATION_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext("
    "'monitor alert evaluation:' || current_database() || '.' || current_schema()))"
)


def lock_evaluation(connection: Connection) -> None:
    """Wait until no other transaction evaluates alerts in this store (PostgreSQL; the
    lock is released at commit or rollback). On SQLite the write transaction already
    holds the database's write lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(_EVALUATION_LOCK))


def load_states(connection: Connection, phase: Phase | None = None) -> list[AlertState]:
    """Stored alert states, optionally of one phase, most recently updated first."""
    query = select(alert_states).order_by(alert_states.c.updated_at.desc())
    if phase is not None:
        query = query.where(alert_states.c.phase == phase.value)
    return [_to_state(row) for row in connection.execute(query)]


def apply_transitions(
    connection: Connection, transitions: Sequence[Transition], messages: Sequence[OutboxMessage]
) -> None:
    """Store new states, a history row per phase change, and their notifications."""
    if transitions:
        connection.execute(_upsert_states(connection), [_state_row(t.state) for t in transitions])
    changed = [
        {
            "fingerprint": t.state.fingerprint,
            "rule": t.state.rule,
            "from_phase": t.previous.value,
            "to_phase": t.state.phase.value,
            "at": t.state.updated_at,
            "summary": t.state.summary,
            "value": t.state.value,
        }
        for t in transitions
        if t.phase_changed
    ]
    if changed:
        connection.execute(insert(alert_history), changed)
    enqueue(connection, messages)


def enqueue(connection: Connection, messages: Sequence[OutboxMessage]) -> None:
    """Insert outbox rows as they are (normally ``pending``, no attempts)."""
    if messages:
        connection.execute(
            insert(alert_outbox),
            [
                {
                    "id": m.id,
                    "sink": m.sink,
                    "fingerprint": m.fingerprint,
                    "event": m.event,
                    "payload": m.payload,
                    "status": m.status.value,
                    "attempts": m.attempts,
                    "created_at": m.created_at,
                    "next_attempt_at": m.next_attempt_at,
                    "sequence": m.sequence,
                    "retry_since": m.retry_since or m.created_at,
                }
                for m in messages
            ],
        )


def sequences(connection: Connection, fingerprints: Sequence[str]) -> dict[str, int]:
    """The highest ``sequence`` queued so far for each of ``fingerprints`` (any sink)."""
    if not fingerprints:
        return {}
    query = (
        select(alert_outbox.c.fingerprint, func.max(alert_outbox.c.sequence))
        .where(alert_outbox.c.fingerprint.in_(list(fingerprints)))
        .group_by(alert_outbox.c.fingerprint)
    )
    return {fp: int(seq) for fp, seq in connection.execute(query)}


def pending_keys(connection: Connection, sinks: Sequence[str]) -> set[tuple[str, str]]:
    """The (fingerprint, sink) pairs that still have a notification waiting."""
    query = (
        select(alert_outbox.c.fingerprint, alert_outbox.c.sink)
        .where(
            alert_outbox.c.sink.in_(list(sinks)),
            alert_outbox.c.status == OutboxStatus.PENDING.value,
        )
        .distinct()
    )
    return {(fp, sink) for fp, sink in connection.execute(query)}


def last_sent(connection: Connection, sinks: Sequence[str]) -> dict[tuple[str, str], datetime]:
    """When each (fingerprint, sink) last had a notification queued."""
    query = (
        select(alert_outbox.c.fingerprint, alert_outbox.c.sink, func.max(alert_outbox.c.created_at))
        .where(alert_outbox.c.sink.in_(list(sinks)))
        .group_by(alert_outbox.c.fingerprint, alert_outbox.c.sink)
    )
    return {(fp, sink): at for fp, sink, at in connection.execute(query)}


def claim_due(
    connection: Connection, *, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxMessage]:
    """Lease up to ``limit`` due rows, at most one per sink and fingerprint, oldest first,
    after marking the rows a newer one supersedes."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    supersede(connection, now=now)
    sibling = alert_outbox.alias("sibling")
    in_flight = (
        select(sibling.c.id)
        .where(
            sibling.c.sink == alert_outbox.c.sink,
            sibling.c.fingerprint == alert_outbox.c.fingerprint,
            sibling.c.id != alert_outbox.c.id,
            sibling.c.status == OutboxStatus.PENDING.value,
            sibling.c.claimed_until >= now,
        )
        .exists()
    )
    due = (
        select(alert_outbox)
        .where(
            alert_outbox.c.status == OutboxStatus.PENDING.value,
            alert_outbox.c.next_attempt_at <= now,
            _unleased(alert_outbox, now),
            ~in_flight,
        )
        .order_by(alert_outbox.c.created_at, alert_outbox.c.sequence, alert_outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = connection.execute(due).all()
    if rows:
        connection.execute(
            update(alert_outbox)
            .where(alert_outbox.c.id.in_([r.id for r in rows]))
            .values(claimed_until=lease_until)
        )
    return [_to_message(row) for row in rows]


def supersede(connection: Connection, *, now: datetime) -> int:
    """Mark ``superseded`` every pending, unleased row of a sink and fingerprint that has
    a newer row (by ``sequence``): its state is out of date and is never sent. A row in
    flight is left alone; its outcome is recorded, and the next claim settles it."""
    newer = alert_outbox.alias("newer")
    has_newer = (
        select(newer.c.id)
        .where(
            newer.c.sink == alert_outbox.c.sink,
            newer.c.fingerprint == alert_outbox.c.fingerprint,
            newer.c.sequence > alert_outbox.c.sequence,
        )
        .exists()
    )
    result = connection.execute(
        update(alert_outbox)
        .where(
            alert_outbox.c.status == OutboxStatus.PENDING.value,
            _unleased(alert_outbox, now),
            has_newer,
        )
        .values(status=OutboxStatus.SUPERSEDED.value, claimed_until=None)
    )
    return int(result.rowcount or 0)


def _unleased(table: Any, now: datetime) -> Any:
    return or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)


def record_attempt(
    connection: Connection,
    message_id: str,
    *,
    at: datetime,
    status: OutboxStatus,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> None:
    """Count one attempt on a row and release its lease."""
    values: dict[str, Any] = {
        "attempts": alert_outbox.c.attempts + 1,
        "status": status.value,
        "claimed_until": None,
        "last_error": error,
    }
    if status is OutboxStatus.DELIVERED:
        values["delivered_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    connection.execute(update(alert_outbox).where(alert_outbox.c.id == message_id).values(values))


def list_outbox(
    connection: Connection,
    *,
    status: OutboxStatus | None = None,
    sink: str | None = None,
    limit: int = 100,
) -> list[OutboxMessage]:
    """Outbox rows, newest first, optionally of one status and one sink."""
    query = (
        select(alert_outbox)
        .order_by(alert_outbox.c.created_at.desc(), alert_outbox.c.sequence.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(alert_outbox.c.status == status.value)
    if sink is not None:
        query = query.where(alert_outbox.c.sink == sink)
    return [_to_message(row) for row in connection.execute(query)]


def outbox_stats(connection: Connection) -> OutboxStats:
    """Rows by status and the number of failed attempts, in one grouped query, plus what
    rows deleted by retention contributed (``retention_tallies``): the delivered, failed
    and dead counts are exported as counters and must never go down."""
    query = select(
        alert_outbox.c.status, func.count(), func.coalesce(func.sum(alert_outbox.c.attempts), 0)
    ).group_by(alert_outbox.c.status)
    deleted = retention.tallies(connection)
    by_status = {s.value: deleted.get(s.value, 0) for s in OutboxStatus}
    failed = deleted["failed_attempts"]
    for status, count, attempts in connection.execute(query):
        by_status[status] += int(count)
        # A delivered row's last attempt succeeded; every other attempt failed.
        failed += int(attempts) - (int(count) if status == OutboxStatus.DELIVERED.value else 0)
    # Dead now, discarded after dying, or redriven after dying (each redrive is in the
    # history): every time a notification died, so the count never goes down.
    redriven = connection.execute(
        select(func.count()).where(
            alert_history.c.from_phase == OutboxStatus.DEAD.value,
            alert_history.c.to_phase == "redriven",
        )
    ).scalar_one()
    dead_total = by_status["dead"] + by_status["discarded"] + int(redriven) + deleted["redriven"]
    return OutboxStats(by_status, failed, dead_total)


def redrive_dead(
    connection: Connection,
    *,
    ids: Sequence[str] | None,
    sink: str | None,
    at: datetime,
    by: str,
    comment: str,
) -> list[OutboxMessage]:
    """Put dead letters (``ids``, or all; optionally of one ``sink``) back in the queue,
    due now, with a fresh ``max_age``; record each in the alert history. A redriven row
    whose alert has a newer notification is superseded at the next claim, not sent.
    Raises ``LookupError`` (changing nothing) if one of ``ids`` is not a dead letter."""
    values = {
        "status": OutboxStatus.PENDING.value,
        "next_attempt_at": at,
        "retry_since": at,
        "claimed_until": None,
    }
    return _act_on_dead(connection, "redriven", values, ids, sink, at, by, comment)


def discard_dead(
    connection: Connection,
    *,
    ids: Sequence[str] | None,
    sink: str | None,
    at: datetime,
    by: str,
    comment: str,
) -> list[OutboxMessage]:
    """Give up on dead letters for good (status ``discarded``, kept for the record), and
    record each in the alert history."""
    values = {"status": OutboxStatus.DISCARDED.value}
    return _act_on_dead(connection, "discarded", values, ids, sink, at, by, comment)


def _act_on_dead(
    connection: Connection,
    action: str,
    values: dict[str, Any],
    ids: Sequence[str] | None,
    sink: str | None,
    at: datetime,
    by: str,
    comment: str,
) -> list[OutboxMessage]:
    rows = _dead(connection, ids=ids, sink=sink)
    if rows:
        connection.execute(
            update(alert_outbox).where(alert_outbox.c.id.in_([r.id for r in rows])).values(values)
        )
        _record_action(connection, rows, action, at=at, by=by, comment=comment)
    return [_to_message(r) for r in rows]


def _dead(connection: Connection, *, ids: Sequence[str] | None, sink: str | None) -> list[Any]:
    query = (
        select(alert_outbox)
        .where(alert_outbox.c.status == OutboxStatus.DEAD.value)
        .order_by(alert_outbox.c.created_at, alert_outbox.c.sequence)
    )
    if ids is not None:
        query = query.where(alert_outbox.c.id.in_(list(ids)))
    if sink is not None:
        query = query.where(alert_outbox.c.sink == sink)
    rows = list(connection.execute(query.with_for_update()).all())
    missing = sorted(set(ids or ()) - {r.id for r in rows})
    if missing:
        # All or nothing: raising here rolls the caller's transaction back.
        raise LookupError(f"not dead letters{_of(sink)}: {', '.join(missing)}")
    return rows


def _of(sink: str | None) -> str:
    return "" if sink is None else f" of sink {sink!r}"


def _record_action(
    connection: Connection, rows: Sequence[Any], action: str, *, at: datetime, by: str, comment: str
) -> None:
    """A history entry per row: ``dead`` -> ``redriven``/``discarded``, saying who and why."""
    why = f": {comment}" if comment else ""
    connection.execute(
        insert(alert_history),
        [
            {
                "fingerprint": r.fingerprint,
                "rule": str(r.payload.get("alert", {}).get("rule", "")),
                "from_phase": OutboxStatus.DEAD.value,
                "to_phase": action,
                "at": at,
                "summary": f"{r.event} notification {r.id} (sequence {r.sequence}) to sink"
                f" {r.sink!r} {action} by {by}{why}",
                "value": None,
            }
            for r in rows
        ],
    )


def add_silence(
    connection: Connection,
    *,
    matchers: dict[str, str],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
) -> int:
    """Store a silence; return its id."""
    result = connection.execute(
        insert(alert_silences).values(
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
        )
    )
    key = result.inserted_primary_key
    return int(key[0]) if key else 0


def silences(connection: Connection, *, active_at: datetime | None = None) -> list[Silence]:
    """Silences, newest first; with ``active_at``, only those not yet over then."""
    query = select(alert_silences).order_by(alert_silences.c.id.desc())
    if active_at is not None:
        query = query.where(alert_silences.c.ends_at > active_at)
    return [
        Silence(r.id, dict(r.matchers), r.starts_at, r.ends_at, r.created_by, r.comment)
        for r in connection.execute(query)
    ]


def history(
    connection: Connection, *, fingerprint: str | None = None, limit: int = 100
) -> list[HistoryEntry]:
    """Phase changes, newest first."""
    query = select(alert_history).order_by(alert_history.c.id.desc()).limit(limit)
    if fingerprint is not None:
        query = query.where(alert_history.c.fingerprint == fingerprint)
    return [
        HistoryEntry(
            r.id, r.fingerprint, r.rule, r.from_phase, r.to_phase, r.at, r.summary, r.value
        )
        for r in connection.execute(query)
    ]


def _upsert_states(connection: Connection) -> Any:
    statement = dialect_insert(connection)(alert_states)
    changes = {
        c.name: statement.excluded[c.name] for c in alert_states.columns if c.name != "fingerprint"
    }
    return statement.on_conflict_do_update(index_elements=["fingerprint"], set_=changes)


def _state_row(state: AlertState) -> dict[str, Any]:
    return {
        "fingerprint": state.fingerprint,
        "rule": state.rule,
        "labels": state.labels,
        "phase": state.phase.value,
        "count": state.count,
        "active_since": state.active_since,
        "fired_at": state.fired_at,
        "resolved_at": state.resolved_at,
        "notified_at": state.notified_at,
        "updated_at": state.updated_at,
        "summary": state.summary,
        "value": state.value,
        "threshold": state.threshold,
        "details": state.details,
        "links": state.links,
    }


def _to_state(row: Row[Any]) -> AlertState:
    return AlertState(
        fingerprint=row.fingerprint,
        rule=row.rule,
        labels=dict(row.labels),
        phase=Phase(row.phase),
        count=row._mapping["count"],
        active_since=row.active_since,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        notified_at=row.notified_at,
        updated_at=row.updated_at,
        summary=row.summary,
        value=row.value,
        threshold=row.threshold,
        details=dict(row.details),
        links=dict(row.links),
    )


def _to_message(row: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        sink=row.sink,
        fingerprint=row.fingerprint,
        event=row.event,
        payload=dict(row.payload),
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        sequence=row.sequence,
        retry_since=row.retry_since,
    )
