"""Alerts: current states (firing, pending, resolved), their history, dead letters and
silences, for operators and dashboards. Dead letters can be redriven or discarded with a
``write`` token; each action is recorded in the alert history. Silences are added with
the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, model_validator

from monitor.alerts.engine import Phase
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.api.auth import require_scope
from monitor.api.params import FilterText
from monitor.store.parts import HasAlerts

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


class AlertOut(BaseModel):
    fingerprint: str
    rule: str
    state: Phase
    severity: str
    labels: dict[str, str]
    summary: str
    value: float | None
    threshold: float | None
    active_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    details: dict[str, Any]
    links: dict[str, str]


class HistoryOut(BaseModel):
    fingerprint: str
    rule: str
    from_state: str
    to_state: str
    at: datetime
    summary: str
    value: float | None


class DeliveryOut(BaseModel):
    id: str
    sink: str
    fingerprint: str
    event: str
    status: OutboxStatus
    sequence: int
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class SilenceOut(BaseModel):
    id: int
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


class AlertsPage(BaseModel):
    alerts: list[AlertOut]
    history: list[HistoryOut]
    dead_letters: list[DeliveryOut]
    silences: list[SilenceOut]


@router.get("")
async def list_alerts(
    request: Request,
    state: Phase | None = None,
    history: Annotated[int, Query(ge=0, le=1000, description="History entries to include")] = 50,
) -> AlertsPage:
    """Alerts by state (all but ``inactive`` unless asked), recent history, dead letters
    and active silences."""
    store: HasAlerts = request.app.state.store

    def read() -> AlertsPage:
        states = store.alerts.alert_states(state)
        if state is None:
            states = [s for s in states if s.phase is not Phase.INACTIVE]
        entries = store.alerts.alert_history(limit=history) if history else []
        dead = store.alerts.list_notifications(status=OutboxStatus.DEAD, limit=100)
        silences = store.alerts.silences(active_at=datetime.now(UTC))
        return AlertsPage(
            alerts=[
                AlertOut(
                    state=s.phase,
                    severity=s.severity,
                    **{
                        k: getattr(s, k)
                        for k in AlertOut.model_fields
                        if k not in ("state", "severity")
                    },
                )
                for s in states
            ],
            history=[
                HistoryOut(
                    fingerprint=h.fingerprint,
                    rule=h.rule,
                    from_state=h.from_phase,
                    to_state=h.to_phase,
                    at=h.at,
                    summary=h.summary,
                    value=h.value,
                )
                for h in entries
            ],
            dead_letters=[_delivery(m) for m in dead],
            silences=[
                SilenceOut(**{k: getattr(x, k) for k in SilenceOut.model_fields}) for x in silences
            ],
        )

    return await anyio.to_thread.run_sync(read)


def _delivery(message: OutboxMessage) -> DeliveryOut:
    return DeliveryOut(**{k: getattr(message, k) for k in DeliveryOut.model_fields})


class DeadLettersPage(BaseModel):
    dead_letters: list[DeliveryOut]


class DeadLetterAction(BaseModel):
    """Which dead letters: the listed ``ids``, or ``all`` of them; ``sink`` narrows."""

    model_config = {"extra": "forbid"}

    ids: list[str] | None = Field(None, min_length=1, max_length=1000)
    all: bool = False
    sink: str | None = None
    comment: str = Field("", max_length=1000)

    @model_validator(mode="after")
    def _which(self) -> DeadLetterAction:
        if (self.ids is None) == (not self.all):
            raise ValueError("give either 'ids' or 'all': true, not both")
        return self


class DeadLetterResult(BaseModel):
    action: str
    messages: list[DeliveryOut]


_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown token"},
    403: {"description": "The token lacks the write scope"},
    404: {"description": "One of the ids is not a dead letter; nothing was changed"},
}


@router.get("/dead-letters")
async def list_dead_letters(
    request: Request,
    sink: FilterText = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLettersPage:
    """Notifications given up on (a permanent failure, or still failing after
    ``alerts.delivery.max_age``), newest first."""
    store: HasAlerts = request.app.state.store

    def read() -> DeadLettersPage:
        dead = store.alerts.list_notifications(status=OutboxStatus.DEAD, sink=sink, limit=limit)
        return DeadLettersPage(dead_letters=[_delivery(m) for m in dead])

    return await anyio.to_thread.run_sync(read)


@router.post("/dead-letters/redrive", responses=_WRITE_RESPONSES)
async def redrive_dead_letters(
    request: Request,
    body: DeadLetterAction,
    token: Annotated[str, Depends(require_scope("write"))],
) -> DeadLetterResult:
    """Queue dead letters again, due now, with a fresh ``max_age``. One whose alert has
    a newer notification is superseded instead of sent: receivers never get a state
    older than one they already have."""
    return await _act(request, body, token, "redriven")


@router.post("/dead-letters/discard", responses=_WRITE_RESPONSES)
async def discard_dead_letters(
    request: Request,
    body: DeadLetterAction,
    token: Annotated[str, Depends(require_scope("write"))],
) -> DeadLetterResult:
    """Give up on dead letters for good (kept as ``discarded``, no longer counted by
    ``monitor_alert_dead_letters``)."""
    return await _act(request, body, token, "discarded")


async def _act(
    request: Request, body: DeadLetterAction, token: str, action: str
) -> DeadLetterResult:
    store: HasAlerts = request.app.state.store
    act = (
        store.alerts.redrive_dead_letters
        if action == "redriven"
        else store.alerts.discard_dead_letters
    )

    def work() -> list[OutboxMessage]:
        return act(
            ids=body.ids,
            sink=body.sink,
            at=datetime.now(UTC),
            by=f"token {token!r}",
            comment=body.comment,
        )

    try:
        done = await anyio.to_thread.run_sync(work)
    except LookupError as exc:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"{exc}; nothing was {action}"
        ) from None
    return DeadLetterResult(action=action, messages=[_delivery(m) for m in done])
