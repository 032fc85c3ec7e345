"""The audit log: every review, baseline promotion and silence, who did it, when and why.

Read scope, newest first, paged like the other list routes (``limit``, then ``before``
set to the previous page's ``next_before``). The log has no write route: entries are
written by the store with the change they record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel

from monitor.api.params import Before
from monitor.api.problems import field_error
from monitor.store import Store
from monitor.wire.verdicts import AuditEntryOut

router = APIRouter(tags=["audit"])

Action = Literal["alert.silenced", "baseline.promoted", "review.approved", "review.rejected"]


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None


@router.get("/v1/audit")
async def list_audit(
    request: Request,
    since: Annotated[
        AwareDatetime | None, Query(description="Only entries at or after this time (with offset).")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Only entries before this time (with offset).")
    ] = None,
    action: Annotated[Action | None, Query(description="Only entries of this action.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Before = None,
) -> AuditPage:
    """Audit entries, newest first."""
    since, until = _utc("since", since), _utc("until", until)
    if since is not None and until is not None and until <= since:
        raise field_error(("query", "until"), "must be after since")
    store: Store = request.app.state.store
    found = await anyio.to_thread.run_sync(
        lambda: store.audit_entries(
            since=since, until=until, action=action, before_id=before, limit=limit
        )
    )
    next_before = found[-1].id if len(found) == limit else None
    return AuditPage(entries=[AuditEntryOut.of(e) for e in found], next_before=next_before)


def _utc(name: str, value: datetime | None) -> datetime | None:
    """``value`` in UTC; a 422 for a time that has none (year 9999 at a negative offset)."""
    try:
        return None if value is None else value.astimezone(UTC)
    except OverflowError:
        raise field_error(("query", name), "out of range in UTC") from None
