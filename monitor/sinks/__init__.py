"""Sinks deliver alert notifications: ``webhook``, ``slack`` and ``alertmanager``.

May import: ``config``, ``alerts`` (the outbox records and the payload) and httpx. Never:
``store``, ``notify``, ``api``, ``daemon``.
"""

from __future__ import annotations

import httpx

from monitor.config.alerts import SinkConfig
from monitor.sinks.alertmanager import AlertmanagerSink
from monitor.sinks.base import SendResult, Sink
from monitor.sinks.slack import SlackSink
from monitor.sinks.webhook import WebhookSink, sign

# Sinks that honour monitor's own silences; Alertmanager users silence in Alertmanager.
DIRECT_KINDS = ("webhook", "slack")


def build_sink(config: SinkConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> Sink:
    """The sink for one ``[[alerts.sinks]]`` table."""
    if config.kind == "webhook":
        return WebhookSink(config, transport=transport)
    if config.kind == "slack":
        return SlackSink(config, transport=transport)
    return AlertmanagerSink(config, transport=transport)


__all__ = [
    "DIRECT_KINDS",
    "AlertmanagerSink",
    "SendResult",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "build_sink",
    "sign",
]
