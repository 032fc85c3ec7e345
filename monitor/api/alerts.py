"""Alerts: current states (firing, pending, resolved), their history, dead letters and
silences, for operators and dashboards. Read-only: silences are added with the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from monitor.alerts.engine import Phase
from monitor.alerts.records import OutboxStatus
from monitor.store import Store

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
    store: Store = request.app.state.store

    def read() -> AlertsPage:
        states = store.alert_states(state)
        if state is None:
            states = [s for s in states if s.phase is not Phase.INACTIVE]
        entries = store.alert_history(limit=history) if history else []
        dead = store.list_notifications(status=OutboxStatus.DEAD, limit=100)
        silences = store.silences(active_at=datetime.now(UTC))
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
            dead_letters=[
                DeliveryOut(**{k: getattr(m, k) for k in DeliveryOut.model_fields}) for m in dead
            ],
            silences=[
                SilenceOut(**{k: getattr(x, k) for k in SilenceOut.model_fields}) for x in silences
            ],
        )

    return await anyio.to_thread.run_sync(read)
