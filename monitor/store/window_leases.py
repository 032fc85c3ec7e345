"""The stream window queue: due windows, the leases replicas hold on them.

The scheduling leader queues each due window of a stream (``enqueue``: one row per
stream x window key, so queueing it again, at a handover or on the next tick, does
nothing). Every replica ``claim``-s queued windows of the streams it has configured with
``FOR UPDATE SKIP LOCKED`` (two replicas never claim the same window and never wait for
each other) and sets ``lease_owner``; the owner keeps its lease alive by refreshing
``heartbeat_at`` (``renew``) until the window's drift report is stored and announced,
then deletes the row (``finish``). A stream is judged in window order, one window at a
time: a window is claimable only when no other window of its stream holds a lease and
none queued before it (``position``) waits, as runs are per suite x model
(``monitor.store.leases``).

A lease whose heartbeat is older than ``[store] stale_after`` has expired: its replica
died or lost the store. ``expire`` puts the window back in the queue; whoever claims it
next judges it, and the unique (stream, window key) index of the drift reports still
refuses a second report of it. SQLite ignores ``FOR UPDATE``; its writes are serialised
by ``BEGIN IMMEDIATE`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, delete, exists, func, or_, select, tuple_, update

from monitor.store.engine import dialect_insert
from monitor.store.tables import stream_windows as windows

__all__ = [
    "ClaimedWindow",
    "DueWindow",
    "WindowCount",
    "WindowLease",
    "claim",
    "claimable",
    "counts",
    "enqueue",
    "expire",
    "finish",
    "last_key",
    "leases",
    "release",
    "release_all",
    "renew",
]


@dataclass(frozen=True, slots=True)
class DueWindow:
    """A window of a stream due to be judged. ``position`` orders a stream's windows
    (its number in the stream's windowing, or the first row or start it covers)."""

    stream: str
    key: str
    position: int
    start: datetime | None = None
    end: datetime | None = None
    first_row: int | None = None
    end_row: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimedWindow:
    """A queued window a replica has claimed: what it needs to judge it. ``until`` is
    the end of the newest window of the stream queued at the time (a files source reads
    the span once)."""

    id: int
    window: DueWindow
    until: datetime | None


@dataclass(frozen=True, slots=True)
class WindowLease:
    """A window some replica holds a lease on (for ``monitor status``)."""

    id: int
    stream: str
    key: str
    owner: str
    heartbeat_at: datetime | None


@dataclass(frozen=True, slots=True)
class WindowCount:
    """How many windows of a stream are queued (nobody holds them) and leased."""

    stream: str
    queued: int
    leased: int


def enqueue(connection: Connection, due: Sequence[DueWindow], *, at: datetime) -> list[int]:
    """Queue ``due`` windows; return the ids of those newly queued (a window already
    queued, or leased, is left as it is)."""
    ids = []
    for window in due:
        statement = (
            dialect_insert(connection)(windows)
            .values(
                stream=window.stream,
                window_key=window.key,
                position=window.position,
                window_start=window.start,
                window_end=window.end,
                first_row=window.first_row,
                end_row=window.end_row,
                created_at=at,
            )
            .on_conflict_do_nothing()
            .returning(windows.c.id)
        )
        new = connection.scalar(statement)
        if new is not None:
            ids.append(int(new))
    return ids


def claim(
    connection: Connection,
    *,
    owner: str,
    at: datetime,
    limit: int,
    streams: Sequence[str],
) -> list[ClaimedWindow]:
    """Lease up to ``limit`` queued windows of ``streams`` to ``owner``, oldest first, at
    most one per stream and only where no other window of it is leased or queued before."""
    if limit < 1 or not streams:
        return []
    other = windows.alias("other")
    before = tuple_(other.c.position, other.c.id) < tuple_(windows.c.position, windows.c.id)
    blocked = exists().where(
        other.c.stream == windows.c.stream,
        other.c.id != windows.c.id,
        or_(other.c.lease_owner.is_not(None), before),
    )
    newest = (
        select(func.max(other.c.window_end))
        .where(other.c.stream == windows.c.stream)
        .scalar_subquery()
    )
    query = (
        select(windows, newest.label("until"))
        .where(windows.c.stream.in_(streams), windows.c.lease_owner.is_(None), ~blocked)
        .order_by(windows.c.created_at, windows.c.position, windows.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=windows)
    )
    rows = connection.execute(query).all()
    if not rows:
        return []
    connection.execute(
        update(windows)
        .where(windows.c.id.in_([row.id for row in rows]))
        .values(lease_owner=owner, heartbeat_at=at)
    )
    return [
        ClaimedWindow(
            r.id,
            DueWindow(
                r.stream,
                r.window_key,
                r.position,
                r.window_start,
                r.window_end,
                r.first_row,
                r.end_row,
            ),
            r.until,
        )
        for r in rows
    ]


def claimable(connection: Connection, streams: Sequence[str]) -> bool:
    """Whether any window of ``streams`` is queued and not leased (a read: a replica
    with nothing to claim takes no write lock)."""
    query = select(windows.c.id).where(
        windows.c.stream.in_(streams), windows.c.lease_owner.is_(None)
    )
    return bool(streams) and connection.scalar(query.limit(1)) is not None


def renew(
    connection: Connection, window_ids: Sequence[int], *, owner: str, at: datetime
) -> list[int]:
    """Refresh the heartbeat of those of ``window_ids`` that ``owner`` still holds;
    return their ids (one missing expired and went back to the queue)."""
    if not window_ids:
        return []
    result = connection.execute(
        update(windows)
        .where(windows.c.id.in_(window_ids), windows.c.lease_owner == owner)
        .values(heartbeat_at=at)
        .returning(windows.c.id)
    )
    return sorted(result.scalars())


def finish(connection: Connection, window_id: int, *, owner: str) -> bool:
    """Delete a judged window's row; False if ``owner`` no longer held it (its lease
    expired and another replica claimed it: the drift reports' unique window key keeps
    the window judged once)."""
    result = connection.execute(
        delete(windows).where(windows.c.id == window_id, windows.c.lease_owner == owner)
    )
    return result.rowcount == 1


def release(connection: Connection, window_id: int, *, owner: str) -> bool:
    """Put a window ``owner`` holds back in the queue (it stops before judging it)."""
    result = connection.execute(
        update(windows)
        .where(windows.c.id == window_id, windows.c.lease_owner == owner)
        .values(lease_owner=None)
    )
    return result.rowcount == 1


def release_all(connection: Connection, *, streams: Sequence[str] | None = None) -> list[int]:
    """Put every leased window (of ``streams``) back in the queue: a single-instance
    store whose one daemon starts knows their holder is dead."""
    query = update(windows).where(windows.c.lease_owner.is_not(None))
    if streams is not None:
        query = query.where(windows.c.stream.in_(streams))
    result = connection.execute(query.values(lease_owner=None).returning(windows.c.id))
    return sorted(result.scalars())


def expire(connection: Connection, *, before: datetime) -> list[WindowLease]:
    """Put the windows whose lease's heartbeat is older than ``before`` back in the
    queue; return the leases that expired."""
    stale = (
        select(windows)
        .where(
            windows.c.lease_owner.is_not(None),
            or_(windows.c.heartbeat_at.is_(None), windows.c.heartbeat_at < before),
        )
        .order_by(windows.c.id)
        .with_for_update(skip_locked=True)
    )
    expired = [
        WindowLease(r.id, r.stream, r.window_key, r.lease_owner, r.heartbeat_at)
        for r in connection.execute(stale).all()
    ]
    if expired:
        connection.execute(
            update(windows)
            .where(windows.c.id.in_([lease.id for lease in expired]))
            .values(lease_owner=None)
        )
    return expired


def last_key(connection: Connection, stream: str, kind: str) -> str | None:
    """The key of the stream's newest queued window of ``kind`` (``rows`` or ``time``):
    the leader queues the windows after it."""
    key = connection.scalar(
        select(windows.c.window_key)
        .where(
            and_(
                windows.c.stream == stream,
                windows.c.window_key.startswith(f"{kind}:", autoescape=True),
            )
        )
        .order_by(windows.c.position.desc(), windows.c.id.desc())
        .limit(1)
    )
    return key if isinstance(key, str) else None


def counts(connection: Connection) -> list[WindowCount]:
    """Queued and leased windows per stream that has any, by stream."""
    leased = func.count(windows.c.lease_owner)
    query = (
        select(windows.c.stream, func.count(), leased)
        .group_by(windows.c.stream)
        .order_by(windows.c.stream)
    )
    return [
        WindowCount(stream, int(total) - int(held), int(held))
        for stream, total, held in connection.execute(query).all()
    ]


def leases(connection: Connection) -> list[WindowLease]:
    """Every leased window, oldest first."""
    query = (
        select(
            windows.c.id,
            windows.c.stream,
            windows.c.window_key,
            windows.c.lease_owner,
            windows.c.heartbeat_at,
        )
        .where(windows.c.lease_owner.is_not(None))
        .order_by(windows.c.id)
    )
    return [
        WindowLease(r.id, r.stream, r.window_key, r.lease_owner, r.heartbeat_at)
        for r in connection.execute(query).all()
    ]
