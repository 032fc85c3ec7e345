"""One-off sends outside the daemon: ``monitor alerts test`` goes through here."""

from __future__ import annotations

from dataclasses import replace

from monitor.alerts.engine import AlertState, Phase
from monitor.alerts.payload import build_payload, new_message_id, sample_state
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.clock import utc_now
from monitor.config.alerts import SinkConfig
from monitor.sinks import SendResult, Sink, build_sink


async def send_test(sink_config: SinkConfig, *, public_url: str | None = None) -> SendResult:
    """Send a clearly-labelled sample alert to one sink, once, and report the outcome.

    Alertmanager keeps a firing alert and forwards it to its receivers until it ends, so
    for an ``alertmanager`` sink the sample is resolved right after it was accepted."""
    now = utc_now()
    state = sample_state(now, sink=sink_config.name)
    sink = build_sink(sink_config)
    try:
        result = await _send(sink, state, public_url, sequence=1)
        if result.ok and sink_config.kind == "alertmanager":
            resolved = replace(state, phase=Phase.RESOLVED, resolved_at=utc_now())
            result = await _send(sink, resolved, public_url, sequence=2)
        return result
    finally:
        await sink.aclose()


async def _send(
    sink: Sink, state: AlertState, public_url: str | None, *, sequence: int
) -> SendResult:
    now = utc_now()
    message_id = new_message_id()
    payload = build_payload(
        message_id, state, event="test", at=now, public_url=public_url, sequence=sequence
    )
    message = OutboxMessage(
        message_id,
        sink.name,
        state.fingerprint,
        "test",
        payload,
        OutboxStatus.PENDING,
        0,
        now,
        now,
        sequence=sequence,
    )
    return await sink.send(message)
