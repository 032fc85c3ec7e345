"""The work queue: queued runs, the leases replicas hold on them, and the replicas.

A run is work in a queue from the moment it is stored ``queued``: the scheduling leader
queues one per schedule slot (``enqueue_slot``), ``POST /v1/runs`` one per model. Every
replica ``claim``-s queued runs with ``FOR UPDATE SKIP LOCKED`` (two replicas never claim
the same run and never wait for each other) and sets ``lease_owner``; the owner keeps the
lease alive by refreshing ``heartbeat_at`` (``renew``) until the run is finished *and
judged*, then ``release``-s it. So one suite x model is worked on by one replica at a
time, in run order: a run is claimable only when no other run of its suite x model holds
a lease and none queued before it waits.

A lease whose heartbeat is older than ``[store] stale_after`` has expired: its replica
died or lost the store. ``expire`` hands such work on (see there). SQLite ignores
``FOR UPDATE``; its writes are serialised by ``BEGIN IMMEDIATE`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from monitor.records import RunStatus
from monitor.store import rollups
from monitor.store.engine import dialect_insert
from monitor.store.tables import replicas as replica_table
from monitor.store.tables import runs

__all__ = [
    "MAX_ATTEMPTS",
    "Claimed",
    "Expired",
    "Lease",
    "Replica",
    "claim",
    "delete_replica",
    "enqueue_slot",
    "expire",
    "forget_replicas",
    "last_slots",
    "leases",
    "list_replicas",
    "queued_count",
    "release",
    "renew",
    "upsert_replica",
]

MAX_ATTEMPTS = 3
"""Runs of one schedule slot at most: a slot whose run kills its replica every time is
not re-run for ever."""

_QUEUED = RunStatus.QUEUED.value
_UNFINISHED = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A queued run a replica has claimed: what it needs to execute it."""

    id: int
    suite: str
    model: str
    trigger: str
    request_id: str | None
    slot_at: datetime | None


@dataclass(frozen=True, slots=True)
class Lease:
    """A run some replica holds a lease on (for ``monitor status``)."""

    id: int
    suite: str
    model: str
    status: RunStatus
    owner: str
    heartbeat_at: datetime | None


@dataclass(frozen=True, slots=True)
class Expired:
    """What ``expire`` did: runs ``interrupted`` (with the re-run queued for each
    scheduled one, ``requeued`` maps old id to new), claimed runs that had not started
    put back in the queue (``returned``), and finished runs not yet judged now leased to
    the caller (``adopted``), which judges them."""

    interrupted: list[int] = field(default_factory=list)
    requeued: dict[int, int] = field(default_factory=dict)
    returned: list[int] = field(default_factory=list)
    adopted: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.interrupted or self.returned or self.adopted)


@dataclass(frozen=True, slots=True)
class Replica:
    """A daemon process using the store, as it last announced itself."""

    name: str
    host: str
    pid: int
    version: str
    started_at: datetime
    seen_at: datetime
    leader: bool


def enqueue_slot(
    connection: Connection,
    *,
    suite: str,
    model: str,
    slot_at: datetime,
    config_hash: str,
    at: datetime,
    only_if_idle: bool,
) -> int | str:
    """Queue the run of a schedule slot; return its id, or why not: ``"busy"`` (with
    ``only_if_idle``, a scheduled run of the pair is still queued or running) or
    ``"duplicate"`` (the slot has a live run: another leader queued it, at a handover).
    The run is created at its slot time, so it sorts by slot in the queue."""
    pair = and_(runs.c.suite == suite, runs.c.model == model)
    if only_if_idle:
        going = select(runs.c.id).where(
            pair, runs.c.trigger == "schedule", runs.c.status.in_(_UNFINISHED)
        )
        if connection.scalar(going.limit(1)) is not None:
            return "busy"
    statement = (
        dialect_insert(connection)(runs)
        .values(
            suite=suite,
            model=model,
            status=_QUEUED,
            trigger="schedule",
            created_at=slot_at,
            slot_at=slot_at,
            dataset_sha256="",
            config_hash=config_hash,
            n_cases=0,
            n_errors=0,
            heartbeat_at=at,
        )
        .on_conflict_do_nothing()
        .returning(runs.c.id)
    )
    run_id = connection.scalar(statement)
    if run_id is None:
        return "duplicate"
    rollups.note_created(connection, suite, model, at=at)
    return int(run_id)


def claim(connection: Connection, *, owner: str, at: datetime, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` queued runs to ``owner``, oldest first, at most one per
    suite x model and only where no other run of it is leased or queued before."""
    if limit < 1:
        return []
    other = runs.alias("other")
    before = tuple_(other.c.created_at, other.c.id) < tuple_(runs.c.created_at, runs.c.id)
    blocked = exists().where(
        other.c.suite == runs.c.suite,
        other.c.model == runs.c.model,
        other.c.id != runs.c.id,
        or_(other.c.lease_owner.is_not(None), and_(other.c.status == _QUEUED, before)),
    )
    query = (
        select(
            runs.c.id,
            runs.c.suite,
            runs.c.model,
            runs.c.trigger,
            runs.c.request_id,
            runs.c.slot_at,
        )
        .where(runs.c.status == _QUEUED, runs.c.lease_owner.is_(None), ~blocked)
        .order_by(runs.c.created_at, runs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=runs)
    )
    rows = connection.execute(query).all()
    if not rows:
        return []
    connection.execute(
        update(runs)
        .where(runs.c.id.in_([row.id for row in rows]))
        .values(lease_owner=owner, heartbeat_at=at)
    )
    return [Claimed(r.id, r.suite, r.model, r.trigger, r.request_id, r.slot_at) for r in rows]


def renew(connection: Connection, run_ids: Sequence[int], *, owner: str, at: datetime) -> list[int]:
    """Refresh the heartbeat of those of ``run_ids`` that ``owner`` still holds a lease
    on; return their ids (one missing was handed on after its lease expired). Only the
    runs the owner is working on: a lease it lost track of expires."""
    if not run_ids:
        return []
    result = connection.execute(
        update(runs)
        .where(runs.c.id.in_(run_ids), runs.c.lease_owner == owner)
        .values(heartbeat_at=at)
        .returning(runs.c.id)
    )
    return sorted(result.scalars())


def release(connection: Connection, run_id: int, *, owner: str) -> bool:
    """Give up ``owner``'s lease on a run (judged, or never to be started here); False
    if it was not held (an expired lease another replica took over)."""
    result = connection.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.lease_owner == owner)
        .values(lease_owner=None)
    )
    return result.rowcount == 1


def expire(
    connection: Connection, *, before: datetime, at: datetime, owner: str, reason: str
) -> Expired:
    """Hand on the work of leases whose heartbeat is older than ``before``:

    - a claimed run that had not started goes back to the queue;
    - a running scheduled run is ``interrupted`` with ``reason`` and its slot queued
      again as a new run (``retry_of`` the old one, created at the same slot time, so
      it keeps its place): a re-run from the first case, not a resume, because the dead
      replica's adapter state, retries and partial aggregates died with it; at most
      ``MAX_ATTEMPTS`` runs per slot;
    - a running API run is ``interrupted`` (its request reports it failed);
    - a finished run that was not released (its replica died before judging it) is
      leased to ``owner``, which judges it.

    Runs whose replica left no lease (``monitor bench``, versions before 0012) are
    interrupted when their heartbeat is stale, as before.
    """
    beat = func.coalesce(runs.c.heartbeat_at, runs.c.started_at, runs.c.created_at)
    stale = (
        select(runs)
        .where(
            beat < before,
            or_(
                runs.c.lease_owner.is_not(None),
                runs.c.status == RunStatus.RUNNING.value,
            ),
        )
        .order_by(runs.c.created_at, runs.c.id)
        .with_for_update(skip_locked=True)
    )
    expired = Expired()
    for row in connection.execute(stale).all():
        if row.status == _QUEUED:
            _set(connection, row.id, lease_owner=None)
            expired.returned.append(row.id)
        elif row.status == RunStatus.RUNNING.value:
            _set(
                connection,
                row.id,
                status=RunStatus.INTERRUPTED.value,
                finished_at=at,
                error=reason,
                lease_owner=None,
            )
            expired.interrupted.append(row.id)
            new = _rerun(connection, row, at)
            if new is not None:
                expired.requeued[row.id] = new
        else:
            _set(connection, row.id, lease_owner=owner, heartbeat_at=at)
            expired.adopted.append(row.id)
    # The run rollup (``/metrics``) counts the interrupted runs, in this transaction.
    rollups.note_finished(connection, expired.interrupted)
    return expired


def _set(connection: Connection, run_id: int, **values: object) -> None:
    connection.execute(update(runs).where(runs.c.id == run_id).values(**values))


def _rerun(connection: Connection, row: Row[Any], at: datetime) -> int | None:
    slot_at = row.slot_at
    if row.trigger != "schedule" or slot_at is None:
        return None
    suite, model = row.suite, row.model
    attempts = connection.scalar(
        select(func.count()).where(
            runs.c.suite == suite, runs.c.model == model, runs.c.slot_at == slot_at
        )
    )
    if (attempts or 0) >= MAX_ATTEMPTS:
        return None
    result = connection.execute(
        insert(runs)
        .values(
            suite=suite,
            model=model,
            status=_QUEUED,
            trigger="schedule",
            created_at=row.created_at,
            slot_at=slot_at,
            dataset_sha256="",
            config_hash=row.config_hash,
            n_cases=0,
            n_errors=0,
            heartbeat_at=at,
            retry_of=row.id,
        )
        .returning(runs.c.id)
    )
    rollups.note_created(connection, suite, model, at=at)
    return int(result.scalar_one())


def last_slots(connection: Connection) -> dict[tuple[str, str], datetime]:
    """The newest schedule slot queued so far of every suite x model."""
    query = (
        select(runs.c.suite, runs.c.model, func.max(runs.c.slot_at))
        .where(runs.c.slot_at.is_not(None))
        .group_by(runs.c.suite, runs.c.model)
    )
    return {(suite, model): at for suite, model, at in connection.execute(query).all()}


def queued_count(connection: Connection) -> int:
    """Queued runs nobody holds a lease on."""
    query = select(func.count()).where(runs.c.status == _QUEUED, runs.c.lease_owner.is_(None))
    return int(connection.scalar(query) or 0)


def leases(connection: Connection) -> list[Lease]:
    """Every leased run, oldest first."""
    query = (
        select(
            runs.c.id,
            runs.c.suite,
            runs.c.model,
            runs.c.status,
            runs.c.lease_owner,
            runs.c.heartbeat_at,
        )
        .where(runs.c.lease_owner.is_not(None))
        .order_by(runs.c.id)
    )
    return [
        Lease(r.id, r.suite, r.model, RunStatus(r.status), r.lease_owner, r.heartbeat_at)
        for r in connection.execute(query).all()
    ]


def upsert_replica(connection: Connection, replica: Replica) -> None:
    """Announce (or refresh) a replica."""
    values = {
        "name": replica.name,
        "host": replica.host,
        "pid": replica.pid,
        "version": replica.version,
        "started_at": replica.started_at,
        "seen_at": replica.seen_at,
        "leader": replica.leader,
    }
    statement = dialect_insert(connection)(replica_table).values(**values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"seen_at": replica.seen_at, "leader": replica.leader},
        )
    )


def delete_replica(connection: Connection, name: str) -> None:
    connection.execute(delete(replica_table).where(replica_table.c.name == name))


def list_replicas(connection: Connection, *, seen_after: datetime | None = None) -> list[Replica]:
    """Replicas by name; with ``seen_after``, only those seen since (the rest died)."""
    query = select(replica_table).order_by(replica_table.c.name)
    if seen_after is not None:
        query = query.where(replica_table.c.seen_at >= seen_after)
    return [
        Replica(r.name, r.host, r.pid, r.version, r.started_at, r.seen_at, r.leader)
        for r in connection.execute(query).all()
    ]


def forget_replicas(connection: Connection, names: Sequence[str]) -> None:
    """Delete the rows of replicas that stopped announcing themselves."""
    if names:
        connection.execute(delete(replica_table).where(replica_table.c.name.in_(names)))
