"""The ``alertmanager`` sink: Alertmanager's v2 API, ``POST /api/v2/alerts``.

Alertmanager identifies an alert by its label set, so the labels are sent as they are.
A firing alert carries no ``endsAt``: Alertmanager then expires it after its
``resolve_timeout`` unless it is re-sent, so the alert service re-queues firing alerts
for this sink every ``resend_interval``. A resolved alert is sent with ``endsAt`` set.
Grouping, inhibition and silences are Alertmanager's own business.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from monitor.alerts.records import OutboxMessage
from monitor.config.alerts import SinkConfig
from monitor.sinks.base import SendResult, Sink


def alertmanager_alerts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The v2 API body (a list of postable alerts) for a monitor payload."""
    alert = payload["alert"]
    annotations = {"summary": alert["summary"]}
    if alert.get("value") is not None:
        annotations["value"] = f"{alert['value']:.6g}"
    if alert.get("threshold") is not None:
        annotations["threshold"] = f"{alert['threshold']:.6g}"
    body: dict[str, Any] = {"labels": alert["labels"], "annotations": annotations}
    if alert.get("starts_at"):
        body["startsAt"] = alert["starts_at"]
    if alert["status"] == "resolved" and alert.get("ends_at"):
        body["endsAt"] = alert["ends_at"]
    link = next(iter(alert["links"].values()), None)
    if link and link.startswith(("http://", "https://")):
        body["generatorURL"] = link
    return [body]


class AlertmanagerSink(Sink):
    """Posts alerts to an Alertmanager, with basic or bearer auth when configured."""

    def __init__(
        self, config: SinkConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config, transport=transport)
        self._auth: httpx.Auth | None = None
        self._headers = {"content-type": "application/json"}
        if config.username is not None and config.password is not None:
            self._auth = httpx.BasicAuth(config.username, config.password.get_secret_value())
        if config.bearer_token is not None:
            self._headers["authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"

    async def send(self, message: OutboxMessage) -> SendResult:
        body = json.dumps(alertmanager_alerts(message.payload)).encode()
        url = f"{self.config.url}/api/v2/alerts"
        return await self._post(url, content=body, headers=self._headers, auth=self._auth)
