"""The audit log: every review, baseline promotion and silence, who did it, when and why.

Read scope, newest first, paged like the other list routes (``limit``, then ``before``
set to the previous page's ``next_before``). The log has no write route: entries are
written by the store with the change they record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, BeforeValidator

from monitor.api.params import Before
from monitor.store.parts import HasAudit
from monitor.wire.verdicts import AuditEntryOut

router = APIRouter(tags=["audit"])

Action = Literal[
    "alert.silenced", "baseline.promoted", "registry.promoted", "review.approved", "review.rejected"
]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _iso_text(value: object) -> object:
    # pydantic would read "0.5" as seconds since 1970: only ISO 8601 text is a time here.
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 time with an offset, e.g. 2026-12-01T00:00:00Z")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None


@router.get("/v1/audit")
async def list_audit(
    request: Request,
    since: Annotated[
        Moment | None, Query(description="Only entries at or after this time (with offset).")
    ] = None,
    until: Annotated[
        Moment | None, Query(description="Only entries before this time (with offset).")
    ] = None,
    action: Annotated[Action | None, Query(description="Only entries of this action.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Before = None,
) -> AuditPage:
    """Audit entries, newest first. A window that ends before it starts holds none."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and until <= since:
        return AuditPage(entries=[], next_before=None)
    store: HasAudit = request.app.state.store
    found = await anyio.to_thread.run_sync(
        lambda: store.audit.audit_entries(
            since=since, until=until, action=action, before_id=before, limit=limit
        )
    )
    next_before = found[-1].id if len(found) == limit else None
    return AuditPage(entries=[AuditEntryOut.of(e) for e in found], next_before=next_before)


def _utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; past the calendar's ends (9999-12-31 at a negative offset), the
    end it passed."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        offset = value.utcoffset()
        late = offset is not None and offset.total_seconds() < 0
        return (datetime.max if late else datetime.min).replace(tzinfo=UTC)
