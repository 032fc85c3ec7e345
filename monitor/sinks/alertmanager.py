"""The ``alertmanager`` sink: Alertmanager's v2 API, ``POST /api/v2/alerts``.

Alertmanager identifies an alert by its label set, so the labels are sent as they are;
the notification's ``sequence`` goes in an annotation, which does not affect grouping.
As Prometheus does, a firing alert carries ``endsAt`` = send time + 4 x
``resend_interval`` (computed when sent, not when queued, so a notification delivered
late after an outage is not already expired), and the alert service re-queues firing
alerts every ``resend_interval``: Alertmanager keeps the alert active across three
missed re-sends and resolves it by itself only once monitor is gone for longer. A
resolved alert is sent with ``endsAt`` = when it resolved. Grouping, inhibition and
silences are Alertmanager's own business.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from monitor.alerts.records import OutboxMessage
from monitor.config.alerts import SinkConfig
from monitor.sinks.base import SendResult, Sink

# How many re-sends Alertmanager may miss before a firing alert expires (Prometheus: 4).
RESEND_MISSES = 4


def alertmanager_alerts(
    payload: dict[str, Any], *, now: datetime | None = None, valid_for: timedelta | None = None
) -> list[dict[str, Any]]:
    """The v2 API body (a list of postable alerts) for a monitor payload; a firing alert
    ends at ``now + valid_for`` unless re-sent."""
    alert = payload["alert"]
    annotations = {"summary": alert["summary"], "sequence": str(payload.get("sequence", 0))}
    if alert.get("value") is not None:
        annotations["value"] = f"{alert['value']:.6g}"
    if alert.get("threshold") is not None:
        annotations["threshold"] = f"{alert['threshold']:.6g}"
    body: dict[str, Any] = {"labels": alert["labels"], "annotations": annotations}
    if alert.get("starts_at"):
        body["startsAt"] = alert["starts_at"]
    if alert["status"] == "resolved" and alert.get("ends_at"):
        body["endsAt"] = alert["ends_at"]
    elif alert["status"] == "firing" and now is not None and valid_for is not None:
        body["endsAt"] = (now + valid_for).isoformat().replace("+00:00", "Z")
    link = next(iter(alert["links"].values()), None)
    if link and link.startswith(("http://", "https://")):
        body["generatorURL"] = link
    return [body]


class AlertmanagerSink(Sink):
    """Posts alerts to an Alertmanager, with basic or bearer auth when configured."""

    def __init__(
        self,
        config: SinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(config, transport=transport)
        self._clock = clock
        self._auth: httpx.Auth | None = None
        self._headers = {"content-type": "application/json"}
        if config.username is not None and config.password is not None:
            self._auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
        if config.bearer_token is not None:
            self._headers["authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"

    async def send(self, message: OutboxMessage) -> SendResult:
        valid_for = RESEND_MISSES * self.config.resend_interval
        alerts = alertmanager_alerts(message.payload, now=self._clock(), valid_for=valid_for)
        body = json.dumps(alerts).encode()
        url = f"{self.config.url}/api/v2/alerts"
        return await self._post(url, content=body, headers=self._headers, auth=self._auth)
