"""Statements for the audit log: append and read, nothing else.

Each function takes an open connection; ``Store`` decides the transaction, so an entry is
written in the same transaction as the change it records (a review, a promotion, a
silence): the log holds an entry if and only if the change happened. There is no update or
delete here on purpose, and the database refuses both (triggers of migration 0015).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from monitor.records import AUDIT_ACTIONS as ACTIONS
from monitor.records import AuditEntry
from monitor.store.tables import audit_log

__all__ = ["ACTIONS", "append", "entries"]


def append(
    connection: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    reason: str,
    details: dict[str, Any],
) -> int:
    """Add one entry; its id."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}, expected one of {', '.join(ACTIONS)}")
    result = connection.execute(
        insert(audit_log).values(
            at=at, actor=actor, action=action, target=target, reason=reason, details=details
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def entries(
    connection: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries at or after ``since`` and before ``until``, optionally of one action: newest
    first (paged with ``before_id``), or oldest first after ``after_id`` (for exports)."""
    column = audit_log.c.id
    query = select(audit_log).limit(limit)
    query = query.order_by(column) if after_id is not None else query.order_by(column.desc())
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if before_id is not None:
        query = query.where(column < before_id)
    if after_id is not None:
        query = query.where(column > after_id)
    return [_entry(row) for row in connection.execute(query)]


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        reason=row.reason,
        details=dict(row.details),
    )
