"""The notification payload: one versioned JSON document, built once per outbox row.

The document is stored with its outbox row and sent byte for byte on every attempt, so a
retry after a crash carries the same ``id`` and the same body. Sinks with their own
format (Slack, Alertmanager) translate from it. ``docs/alerting.md`` documents the fields;
a change that removes or renames one bumps ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from monitor.alerts.engine import AlertState, Phase

SCHEMA_VERSION = "1"

Payload = dict[str, Any]


def new_message_id() -> str:
    """A fresh idempotency id (``msg_`` + 32 hex): unique per notification per sink."""
    return f"msg_{secrets.token_hex(16)}"


def build_payload(
    message_id: str,
    state: AlertState,
    *,
    event: str,
    at: datetime,
    public_url: str | None,
    sequence: int = 0,
) -> Payload:
    """The document a sink sends for ``state``; ``event`` is firing, resolved or test.
    ``sequence`` grows with every notification of the alert: a receiver drops a message
    whose sequence is not above the last one it saw for that fingerprint."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": message_id,
        "event": event,
        "sequence": sequence,
        "created_at": _iso(at),
        "alert": {
            "fingerprint": state.fingerprint,
            "rule": state.rule,
            "rule_kind": state.labels.get("rule_kind"),
            "severity": state.severity,
            "status": "resolved" if state.phase is Phase.RESOLVED else "firing",
            "labels": dict(sorted(state.labels.items())),
            "summary": state.summary,
            "value": state.value,
            "threshold": state.threshold,
            "starts_at": _iso(state.fired_at),
            "ends_at": _iso(state.resolved_at) if state.phase is Phase.RESOLVED else None,
            "details": state.details,
            "links": absolute_links(state.links, public_url),
        },
    }


def absolute_links(links: dict[str, str], public_url: str | None) -> dict[str, str]:
    """API paths made absolute with ``server.public_url`` (kept relative without it)."""
    base = (public_url or "").rstrip("/")
    return {name: f"{base}{path}" for name, path in sorted(links.items())}


def encode(payload: Payload) -> bytes:
    """The exact bytes sent (and signed): compact, key order as built."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def sample_state(now: datetime, *, sink: str) -> AlertState:
    """A made-up firing alert for ``monitor alerts test``: clearly labelled as a test."""
    labels = {"alertname": "monitor-test", "severity": "info", "rule_kind": "test", "sink": sink}
    return AlertState(
        fingerprint="test0000000000000",
        rule="monitor-test",
        labels=labels,
        phase=Phase.FIRING,
        count=1,
        active_since=now,
        fired_at=now,
        resolved_at=None,
        notified_at=now,
        updated_at=now,
        summary=f"test notification from monitor to sink {sink!r}; nothing is wrong",
        value=0.0,
        threshold=None,
    )
