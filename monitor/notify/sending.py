"""One-off sends outside the daemon: ``monitor alerts test`` goes through here."""

from __future__ import annotations

from monitor.alerts.payload import build_payload, new_message_id, sample_state
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.clock import utc_now
from monitor.config.alerts import SinkConfig
from monitor.sinks import SendResult, build_sink


async def send_test(sink_config: SinkConfig, *, public_url: str | None = None) -> SendResult:
    """Send a clearly-labelled sample alert to one sink, once, and report the outcome."""
    now = utc_now()
    message_id = new_message_id()
    state = sample_state(now, sink=sink_config.name)
    payload = build_payload(message_id, state, event="test", at=now, public_url=public_url)
    message = OutboxMessage(
        message_id,
        sink_config.name,
        state.fingerprint,
        "test",
        payload,
        OutboxStatus.PENDING,
        0,
        now,
        now,
    )
    sink = build_sink(sink_config)
    try:
        return await sink.send(message)
    finally:
        await sink.aclose()
