"""The ``store.audit`` part of the store: the audit log. Entries of changes in the store
are written in the transaction of the change they record (``monitor.store.audit`` has the
SQL); a change made elsewhere (an alias moved in a model registry) is recorded here once
it was made, with :meth:`AuditLog.record`.

:class:`AuditLog` shares its :class:`~monitor.store.Store`'s engine and transactions; each
method is one transaction (see ``monitor.store.store``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.records import AuditEntry
from monitor.store import audit
from monitor.store.types import ensure_utc

if TYPE_CHECKING:
    from monitor.store.store import Store

__all__ = ["AuditLog"]


class AuditLog:
    """The audit log (entries are written by the changes they record)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        target: str,
        reason: str,
        details: dict[str, Any],
    ) -> int:
        """Append an entry for a change made outside the store (``registry.promoted``);
        its id. Changes to the store's own rows write theirs in their transaction."""
        at = ensure_utc(at, name="at")
        with self._store._writing(f"recording {action} in the audit log") as connection:
            return audit.append(
                connection,
                at=at,
                actor=actor,
                action=action,
                target=target,
                reason=reason,
                details=details,
            )

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The audit log from ``since`` up to ``until``: newest first (page on with
        ``before_id``), or oldest first after ``after_id``. The log has no update or delete:
        entries are only written with the change they record."""
        if before_id is not None and after_id is not None:
            raise ValueError("give before_id or after_id, not both")
        if action is not None and action not in audit.ACTIONS:
            known = ", ".join(audit.ACTIONS)
            raise ValueError(f"unknown audit action {action!r}, expected one of {known}")
        since = None if since is None else ensure_utc(since, name="since")
        until = None if until is None else ensure_utc(until, name="until")
        with self._store._reading("reading the audit log") as connection:
            return audit.entries(
                connection,
                since=since,
                until=until,
                action=action,
                before_id=before_id,
                after_id=after_id,
                limit=limit,
            )
