"""The demo's ``[alerts]`` table: its rules and the sink that reaches the demo receiver.

Each rule is one entry of :data:`RULES` (a ``[[alerts.rules]]`` table, validated like a
user's), so adding a rule to the demo is adding an entry; every rule goes to the one
webhook sink, the demo receiver (``monitor.demo.receiver``).
"""

from __future__ import annotations

from typing import Any

RECEIVER_SINK = "demo-receiver"

RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "DemoModelRegressed",
        "kind": "regression",
        "severity": "critical",
    },
    {
        "name": "DemoTrafficDrifted",
        "kind": "drift",
        "severity": "warning",
        # Two drifted windows in a row: one window near the threshold is not news.
        "for": 2,
    },
    {
        "name": "DemoProductionAccuracyDropped",
        "kind": "performance",
        "severity": "warning",
        "stream": "wine-traffic",
        # Three windows in a row judged worse (each at 5%): a healthy model's traffic does
        # not page.
        "for": 3,
    },
)
"""The rules: a regressed verdict of any suite, dataset drift of any stream, and the
demo stream's realized accuracy judged worse than its reference's."""


def alerts_table(
    receiver_url: str, secret: str, *, rules: tuple[dict[str, Any], ...] = RULES
) -> dict[str, Any]:
    """``[alerts]`` with ``rules`` and one signed webhook sink posting to ``receiver_url``.

    ``poll_interval`` and ``backoff`` are short: the receiver is on loopback, and the demo
    should show an alert the moment it fires."""
    return {
        "evaluate_every": "5s",
        "delivery": {"poll_interval": "500ms", "backoff": "500ms"},
        "rules": [dict(rule) for rule in rules],
        "sinks": [
            {
                "name": RECEIVER_SINK,
                "kind": "webhook",
                "url": receiver_url,
                "secret": secret,
                "timeout": "5s",
            }
        ],
    }
