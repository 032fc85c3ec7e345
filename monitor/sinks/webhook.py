"""The ``webhook`` sink: the payload as JSON, signed the Standard Webhooks way.

Headers: ``webhook-id`` (the outbox id: the same on every retry, so a receiver can
de-duplicate), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed with the
base64-decoded part of the ``whsec_`` secret. ``docs/alerting.md`` has a receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import httpx

from monitor.alerts.payload import encode
from monitor.alerts.records import OutboxMessage
from monitor.config.alerts import SinkConfig, signing_key
from monitor.sinks.base import SendResult, Sink


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookSink(Sink):
    """POSTs the versioned payload to ``url`` with signature headers."""

    def __init__(
        self,
        config: SinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, transport=transport)
        assert config.secret is not None  # validated at load
        self._key = signing_key(config.secret)
        self._clock = clock

    async def send(self, message: OutboxMessage) -> SendResult:
        body = encode(message.payload)
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, message.id, timestamp, body),
        }
        return await self._post(self.config.url, content=body, headers=headers)
