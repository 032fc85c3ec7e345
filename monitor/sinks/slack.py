"""The ``slack`` sink: an incoming-webhook message with blocks.

The message says what degraded (the summary), how much (value vs threshold, or baseline
vs now for a regression), and links to the run, verdict or drift report. Slack answers
429 with ``Retry-After`` when rate limited; the base class reports it and the delivery
worker waits that long before the next attempt.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.alerts.records import OutboxMessage
from monitor.sinks.base import SendResult, Sink

_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":information_source:",
}


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The Slack incoming-webhook body for a monitor payload."""
    alert = payload["alert"]
    resolved = alert["status"] == "resolved"
    icon = ":white_check_mark:" if resolved else _ICONS.get(alert["severity"], "")
    title = f"{icon} [{alert['status'].upper()}] {alert['rule']} ({alert['severity']})"
    fields = [f"*{k}*: {v}" for k, v in alert["labels"].items() if k not in ("alertname",)]
    fields.append(f"sequence {payload.get('sequence', 0)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert["summary"][:2900]}},
    ]
    how_much = _how_much(alert)
    if how_much:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": how_much}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(fields)}]})
    links = " · ".join(f"<{url}|{name}>" for name, url in alert["links"].items())
    if links:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": links}})
    return {"text": f"{title}: {alert['summary']}"[:3000], "blocks": blocks}


def _how_much(alert: dict[str, Any]) -> str:
    lines = []
    for m in alert["details"].get("metrics", []):
        if m.get("outcome") == "regressed":
            p = f", p={m['p_value']:.3g}" if m.get("p_value") is not None else ""
            lines.append(
                f"*{m['metric']}*: baseline {m['baseline']:.4g} → now {m['current']:.4g}"
                f" ({m['delta']:+.4g}{p})"
            )
    if not lines and alert.get("value") is not None and alert.get("threshold") is not None:
        lines.append(f"now {alert['value']:.4g} vs threshold {alert['threshold']:.4g}")
    return "\n".join(lines)


class SlackSink(Sink):
    """POSTs a blocks message to a Slack incoming-webhook URL."""

    async def send(self, message: OutboxMessage) -> SendResult:
        body = json.dumps(slack_message(message.payload)).encode()
        return await self._post(
            self.config.url, content=body, headers={"content-type": "application/json"}
        )
