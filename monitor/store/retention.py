"""Retention: delete what is older than ``[store.retention]`` allows, one small batch at a time.

Each function deletes at most one batch and is meant to run in its own short write
transaction (``Store.retention.expire``). Candidates are found oldest first by the time index of
their kind (migration 0013), so no statement walks the whole history and no lock is held
for long: a busy daemon's runs and ingest slip in between batches. The caller loops
until a batch comes back short.

What is never deleted, whatever its age:

- a queued or running run; a run any baseline promotion names (active or not: the
  promotion history points at it); a run a retained verdict judged or was judged against;
  the latest finished and the latest succeeded run of each suite x model (``/metrics``
  reads them); a run, verdict or drift report an open (pending or firing) alert links to;
- the newest verdict of each suite x model, the newest drift report of each stream;
- an outbox row still ``pending`` or ``dead`` (a dead letter waits for an operator), and
  the newest row of each alert x sink (its sequence number and last send time live there).

Counters computed from rows that retention deletes (delivered notifications, failed
attempts, dead letters) keep what the deleted rows contributed in ``retention_tallies``,
written in the same transaction as the delete, so no exported counter ever goes down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, delete, func, select, true

from monitor.alerts.engine import Phase
from monitor.alerts.records import OutboxStatus
from monitor.records import RunStatus
from monitor.store.engine import dialect_insert
from monitor.store.tables import (
    alert_history,
    alert_outbox,
    alert_states,
    baselines,
    case_results,
    drift_reports,
    retention_tallies,
    run_requests,
    run_rollups,
    runs,
    verdicts,
)

__all__ = [
    "TALLIES",
    "delete_alert_history",
    "delete_drift_reports",
    "delete_outbox",
    "delete_runs",
    "delete_verdicts",
    "tallies",
]

TALLIES = ("delivered", "failed_attempts", "discarded", "superseded", "redriven")
"""Names of ``retention_tallies`` rows: ``redriven`` counts deleted history entries of
dead letters redriven, the others deleted outbox rows (and their failed attempts)."""

_UNFINISHED = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
_DONE = [OutboxStatus.DELIVERED.value, OutboxStatus.SUPERSEDED.value, OutboxStatus.DISCARDED.value]
_LINK = re.compile(r"/v1/(runs|verdicts|drift/reports)/(\d+)$")


def delete_verdicts(connection: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` verdicts made before ``before`` (their metric rows go with
    them); keep each pair's newest and those an open alert links to."""
    linked = _linked(connection)["verdicts"]
    query = (
        select(verdicts.c.id)
        .where(verdicts.c.created_at < before)
        .where(_not_in(verdicts.c.id, linked))
        .where(verdicts.c.id.not_in(_present(run_rollups.c.verdict_id)))
        .order_by(verdicts.c.created_at, verdicts.c.id)
        .limit(limit)
    )
    ids = list(connection.scalars(query))
    if ids:
        connection.execute(delete(verdicts).where(verdicts.c.id.in_(ids)))
    return len(ids)


def delete_runs(connection: Connection, *, before: datetime, limit: int, max_cases: int) -> int:
    """Delete up to ``limit`` finished runs that finished before ``before``, with their
    case results, metrics and slices, but no more than about ``max_cases`` case rows in
    one go: a run with more cases loses them ``max_cases`` at a time first. Return how
    many rows of ``runs`` and ``case_results`` went. Requests left without runs go too."""
    linked = _linked(connection)["runs"]
    query = (
        select(runs.c.id, runs.c.n_cases)
        # NOT IN rather than IN: the planner then walks the finished_at index, not the
        # status index (which would read every finished run for every batch).
        .where(runs.c.finished_at < before, runs.c.status.not_in(_UNFINISHED))
        .where(_not_in(runs.c.id, linked))
        .where(runs.c.id.not_in(_present(run_rollups.c.last_run_id)))
        .where(runs.c.id.not_in(_present(run_rollups.c.success_run_id)))
        .where(runs.c.id.not_in(select(baselines.c.run_id)))
        .where(~select(verdicts.c.id).where(verdicts.c.run_id == runs.c.id).exists())
        .where(~select(verdicts.c.id).where(verdicts.c.baseline_run_id == runs.c.id).exists())
        .order_by(runs.c.finished_at, runs.c.id)
        .limit(limit)
    )
    ids: list[int] = []
    budget = max_cases
    for run_id, n_cases in connection.execute(query):
        if ids and n_cases > budget:
            break
        ids.append(run_id)
        budget -= n_cases
    if not ids:
        return 0
    deleted = 0
    if budget < 0:  # one run with more cases than a batch may delete: a slice of them
        deleted = _delete_some_cases(connection, ids[0], max_cases)
        if deleted == max_cases:
            return deleted  # more may be left: the run itself goes in a later batch
    # The case results explicitly, to count them; metrics and slices go by their foreign
    # keys' ON DELETE CASCADE (enforced on SQLite too, see engine.py).
    cases = connection.execute(delete(case_results).where(case_results.c.run_id.in_(ids)))
    requests = select(runs.c.request_id).where(runs.c.id.in_(ids), runs.c.request_id.is_not(None))
    request_ids = set(connection.scalars(requests))
    connection.execute(delete(runs).where(runs.c.id.in_(ids)))
    if request_ids:
        orphaned = ~select(runs.c.id).where(runs.c.request_id == run_requests.c.id).exists()
        connection.execute(delete(run_requests).where(run_requests.c.id.in_(request_ids), orphaned))
    return deleted + len(ids) + int(cases.rowcount)


def delete_drift_reports(connection: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` drift reports made before ``before`` (their HTML with them);
    keep each stream's newest report and newest ``ok`` report, and those an open alert
    links to."""
    linked = _linked(connection)["drift/reports"]
    newest = select(func.max(drift_reports.c.id)).group_by(drift_reports.c.stream)
    newest_ok = newest.where(drift_reports.c.status == "ok")
    query = (
        select(drift_reports.c.id)
        .where(drift_reports.c.created_at < before)
        .where(_not_in(drift_reports.c.id, linked))
        .where(drift_reports.c.id.not_in(newest), drift_reports.c.id.not_in(newest_ok))
        .order_by(drift_reports.c.created_at, drift_reports.c.id)
        .limit(limit)
    )
    ids = list(connection.scalars(query))
    if ids:
        connection.execute(delete(drift_reports).where(drift_reports.c.id.in_(ids)))
    return len(ids)


def delete_alert_history(connection: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` alert phase changes older than ``before``, tallying the
    redrives of dead letters among them (``monitor_alert_dead_letters`` counts those)."""
    query = (
        select(alert_history.c.id, alert_history.c.from_phase, alert_history.c.to_phase)
        .where(alert_history.c.at < before)
        .order_by(alert_history.c.at, alert_history.c.id)
        .limit(limit)
    )
    rows = connection.execute(query).all()
    redriven = sum(
        1
        for row in rows
        if row.from_phase == OutboxStatus.DEAD.value and row.to_phase == "redriven"
    )
    if rows:
        connection.execute(
            delete(alert_history).where(alert_history.c.id.in_([r.id for r in rows]))
        )
        _tally(connection, {"redriven": redriven})
    return len(rows)


def delete_outbox(connection: Connection, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` delivered, superseded or discarded notifications created
    before ``before``, except the newest of each alert x sink; tally them first."""
    newer = alert_outbox.alias("newer")
    query = (
        select(alert_outbox.c.id, alert_outbox.c.status, alert_outbox.c.attempts)
        .where(alert_outbox.c.status.in_(_DONE), alert_outbox.c.created_at < before)
        .where(
            select(newer.c.id)
            .where(
                newer.c.fingerprint == alert_outbox.c.fingerprint,
                newer.c.sink == alert_outbox.c.sink,
                newer.c.sequence > alert_outbox.c.sequence,
            )
            .exists()
        )
        .order_by(alert_outbox.c.created_at, alert_outbox.c.id)
        .limit(limit)
    )
    rows = connection.execute(query).all()
    if not rows:
        return 0
    counts = dict.fromkeys(TALLIES, 0)
    for row in rows:
        counts[row.status] += 1
        # A delivered row's last attempt succeeded; every other attempt failed.
        delivered = row.status == OutboxStatus.DELIVERED.value
        counts["failed_attempts"] += row.attempts - (1 if delivered else 0)
    connection.execute(delete(alert_outbox).where(alert_outbox.c.id.in_([r.id for r in rows])))
    _tally(connection, counts)
    return len(rows)


def tallies(connection: Connection) -> dict[str, int]:
    """What deleted rows contributed to the counters, by ``TALLIES`` name (0 if none)."""
    query = select(retention_tallies.c.name, retention_tallies.c.value)
    found = {row.name: row.value for row in connection.execute(query)}
    return {name: int(found.get(name, 0)) for name in TALLIES}


def _tally(connection: Connection, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        if not count:
            continue
        upsert = dialect_insert(connection)(retention_tallies).values(name=name, value=count)
        connection.execute(
            upsert.on_conflict_do_update(
                index_elements=["name"], set_={"value": retention_tallies.c.value + count}
            )
        )


def _delete_some_cases(connection: Connection, run_id: int, count: int) -> int:
    some = (
        select(case_results.c.case_id)
        .where(case_results.c.run_id == run_id)
        .order_by(case_results.c.case_id)
        .limit(count)
    )
    result = connection.execute(
        delete(case_results).where(
            case_results.c.run_id == run_id, case_results.c.case_id.in_(some.scalar_subquery())
        )
    )
    return int(result.rowcount)


def _linked(connection: Connection) -> dict[str, set[int]]:
    """Ids of runs, verdicts and drift reports that open alerts link to."""
    found: dict[str, set[int]] = {"runs": set(), "verdicts": set(), "drift/reports": set()}
    query = select(alert_states.c.links).where(
        alert_states.c.phase.in_([Phase.PENDING.value, Phase.FIRING.value])
    )
    for links in connection.scalars(query):
        for link in (links or {}).values():
            match = _LINK.search(str(link))
            if match:
                found[match.group(1)].add(int(match.group(2)))
    return found


def _present(column: ColumnElement[int | None]) -> Select[Any]:
    return select(column).where(column.is_not(None))


def _not_in(column: ColumnElement[int], ids: Iterable[int]) -> ColumnElement[bool]:
    values = sorted(ids)
    return column.not_in(values) if values else true()
