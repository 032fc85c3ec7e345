"""The demo's alert receiver: a loopback webhook that checks what it gets and logs it.

``monitor demo`` has no Slack or Alertmanager to send to, yet its alerts should travel the
path a user's do: rule, alert state, outbox, ``webhook`` sink, signed HTTP POST. This
small server is that sink's endpoint. It verifies the Standard Webhooks signature with the
sink's own ``sign`` (a receiver that accepted anything would hide a broken signature),
logs one line per notification and keeps what it received for ``GET /alerts``.

Routes::

    POST /alerts  a webhook notification (docs/alerting.md) -> 204; 401 on a bad signature
    GET  /alerts  -> {"notifications": [payload, ...]} in the order received
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import SecretStr

from monitor.config.alerts import signing_key
from monitor.daemon.serving import EmbeddedServer, start_server
from monitor.sinks.webhook import sign

logger = logging.getLogger("monitor.demo")

MAX_KEPT = 1000
"""Notifications ``GET /alerts`` keeps: the oldest go first, so a long demo stays small."""


class DemoReceiver:
    """What the receiver got: verified notifications, oldest first."""

    def __init__(self, secret: SecretStr) -> None:
        self._key = signing_key(secret)
        self.notifications: list[dict[str, Any]] = []

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        """Whether ``body`` carries a valid ``webhook-signature`` for its id and time."""
        message_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        if not message_id or not timestamp.isdigit():
            return False
        expected = sign(self._key, message_id, int(timestamp), body)
        given = headers.get("webhook-signature", "").split()
        return any(hmac.compare_digest(expected, one) for one in given)

    def receive(self, payload: dict[str, Any]) -> None:
        """Keep ``payload`` and log the line a human reads in the demo's output."""
        self.notifications.append(payload)
        del self.notifications[:-MAX_KEPT]
        logger.info("demo receiver got an alert: %s", describe(payload))


def describe(payload: dict[str, Any]) -> str:
    """One line for a notification: state, rule, severity and the summary."""
    alert = payload.get("alert") or {}
    status = str(alert.get("status", payload.get("event", "?"))).upper()
    return f"{status} {alert.get('rule')} [{alert.get('severity')}]: {alert.get('summary')}"


def create_receiver_app(receiver: DemoReceiver) -> FastAPI:
    """The ASGI app of ``receiver``."""
    app = FastAPI(title="monitor demo alert receiver")

    @app.post("/alerts", status_code=204)
    async def alerts(request: Request) -> Response:
        body = await request.body()
        if not receiver.verify(dict(request.headers), body):
            logger.warning("demo receiver refused a notification: bad or missing signature")
            return Response(status_code=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return Response(status_code=400)
        receiver.receive(payload)
        return Response(status_code=204)

    @app.get("/alerts")
    async def received() -> dict[str, list[dict[str, Any]]]:
        return {"notifications": list(receiver.notifications)}

    return app


async def serve_receiver(receiver: DemoReceiver) -> EmbeddedServer:
    """Serve ``receiver`` on a free loopback port in the running event loop."""
    app = create_receiver_app(receiver)
    return await start_server(app, host="127.0.0.1", port=0, what="demo alert receiver")
