"""The demo's alert receiver, fed by the real webhook sink over loopback, and the demo's
alert configuration as the daemon validates it."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from monitor.alerts.payload import build_payload, sample_state
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.cli import cli
from monitor.config import SinkConfig
from monitor.daemon.serving import EmbeddedServer
from monitor.demo.alerting import RECEIVER_SINK, RULES
from monitor.demo.launch import demo_config
from monitor.demo.receiver import DemoReceiver, serve_receiver
from monitor.sinks.webhook import WebhookSink

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123").decode()
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


@pytest.fixture
async def served() -> AsyncIterator[tuple[DemoReceiver, EmbeddedServer]]:
    receiver = DemoReceiver(SecretStr(SECRET))
    server = await serve_receiver(receiver)
    yield receiver, server
    await server.stop()


def message(sink: str = RECEIVER_SINK) -> OutboxMessage:
    state = sample_state(NOW, sink=sink)
    payload = build_payload("msg_1", state, event="firing", at=NOW, public_url=None)
    return OutboxMessage(
        "msg_1", sink, state.fingerprint, "firing", payload, OutboxStatus.PENDING, 0, NOW, NOW
    )


def sink(url: str, secret: str = SECRET) -> WebhookSink:
    config = SinkConfig.model_validate(
        {"name": RECEIVER_SINK, "kind": "webhook", "url": url, "secret": secret}
    )
    return WebhookSink(config)


async def test_a_signed_notification_is_kept_and_logged(
    served: tuple[DemoReceiver, EmbeddedServer], caplog: pytest.LogCaptureFixture
) -> None:
    receiver, server = served
    caplog.set_level(logging.INFO, logger="monitor.demo")
    sent = message()
    webhook = sink(f"{server.url}/alerts")
    try:
        result = await webhook.send(sent)
    finally:
        await webhook.aclose()
    assert result.ok, result
    assert receiver.notifications == [sent.payload]
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{server.url}/alerts")).json()
    assert listed == {"notifications": [sent.payload]}
    rule = sent.payload["alert"]["rule"]
    assert f"demo receiver got an alert: FIRING {rule} [" in caplog.text


async def test_a_notification_signed_with_another_key_is_refused(
    served: tuple[DemoReceiver, EmbeddedServer],
) -> None:
    receiver, server = served
    other = "whsec_" + base64.b64encode(b"another key, 20 bytes").decode()
    webhook = sink(f"{server.url}/alerts", other)
    try:
        result = await webhook.send(message())
    finally:
        await webhook.aclose()
    assert not result.ok and receiver.notifications == []
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(f"{server.url}/alerts", json=message().payload)
    assert unsigned.status_code == 401 and receiver.notifications == []


def test_demo_config_sends_every_rule_to_the_receiver(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").write_text("")
    (tmp_path / "demo-reference.csv").write_text("ts,alcohol\n")
    config = demo_config(
        "http://127.0.0.1:1",
        dataset=tmp_path / "cases.jsonl",
        host="127.0.0.1",
        port=0,
        data_dir=tmp_path,
        every=timedelta(seconds=2),
        token="t" * 32,
        receiver_url="http://127.0.0.1:2/alerts",
        receiver_secret=SECRET,
    )
    assert [r.name for r in config.alerts.rules] == [r["name"] for r in RULES]
    assert {r.kind for r in config.alerts.rules} == {"regression", "drift", "performance"}
    (suite,) = config.suites  # its runs' fairness over the cases' region, as the stream's
    assert suite.fairness is not None and suite.fairness.groups == "region"
    assert "region" in suite.metadata and config.streams[0].segments == ("region",)
    (only,) = config.alerts.sinks
    assert (only.kind, only.url) == ("webhook", "http://127.0.0.1:2/alerts")
    assert all(only.takes(r.severity, {}) for r in config.alerts.rules)
    # A compressed demo judges its stream as often as its suite runs.
    (stream,) = config.streams
    assert stream.schedule is not None and stream.schedule.every == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--recover-after", "5m"], "needs --degrade-after"),
        (["--degrade-after", "5m", "--recover-after", "2m"], "must come after --degrade-after"),
        (["--degrade-ramp", "soon"], "--degrade-ramp"),
    ],
    ids=["recover-without-degrade", "recover-before-degrade", "bad-ramp"],
)
def test_demo_rejects_a_schedule_that_cannot_tell_the_story(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["demo", *args])
    assert result.exit_code == 2 and problem in result.stderr
