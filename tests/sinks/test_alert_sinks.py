"""Sinks and backoff as units: request shapes, auth, Retry-After, jitter bounds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.alerts.engine import Phase
from monitor.alerts.payload import build_payload, sample_state
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.config.alerts import DeliveryConfig, SinkConfig
from monitor.notify.delivery import DeliveryWorker, backoff_delay
from monitor.sinks import build_sink
from monitor.sinks.base import retry_after
from monitor.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def message(*, resolved: bool = False) -> OutboxMessage:
    state = sample_state(T0, sink="s")
    if resolved:
        state = replace(state, phase=Phase.RESOLVED, resolved_at=T0 + timedelta(minutes=5))
    payload = build_payload("msg_1", state, event="firing", at=T0, public_url="https://m.example")
    payload["alert"]["links"] = {"run": "https://m.example/v1/runs/1"}
    return OutboxMessage("msg_1", "s", "fp", "firing", payload, OutboxStatus.PENDING, 0, T0, T0)


def capture(
    status: int = 200, headers: dict[str, str] | None = None
) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers or {})

    return seen, httpx.MockTransport(handle)


def sink(**fields: Any) -> SinkConfig:
    return SinkConfig.model_validate({"name": "s", "url": "https://hooks.example/x", **fields})


async def test_slack_blocks_and_retry_after() -> None:
    seen, transport = capture(429, {"retry-after": "7"})
    slack = build_sink(sink(kind="slack"), transport=transport)
    result = await slack.send(message())
    await slack.aclose()
    assert not result.ok and result.retry_after == 7.0 and result.error == "sink 's': HTTP 429"
    body = json.loads(seen[0].content)
    assert body["blocks"][0]["type"] == "header" and "FIRING" in body["blocks"][0]["text"]["text"]
    assert any("<https://m.example/v1/runs/1|run>" in str(b) for b in body["blocks"])


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        pytest.param({"bearer_token": "t0ken"}, "Bearer t0ken", id="bearer"),
        pytest.param({"username": "u", "password": "p"}, "Basic dTpw", id="basic"),
    ],
)
async def test_alertmanager_request(auth: dict[str, str], expected: str) -> None:
    seen, transport = capture()
    am = build_sink(sink(kind="alertmanager", url="http://am:9093", **auth), transport=transport)
    assert (await am.send(message(resolved=True))).ok
    await am.aclose()
    request = seen[0]
    assert str(request.url) == "http://am:9093/api/v2/alerts"
    assert request.headers["authorization"] == expected
    (alert,) = json.loads(request.content)
    assert alert["labels"]["alertname"] == "monitor-test"
    assert alert["endsAt"] == "2024-05-01T12:05:00Z" and alert["startsAt"] == "2024-05-01T12:00:00Z"
    assert alert["generatorURL"] == "https://m.example/v1/runs/1"


async def test_connection_errors_do_not_leak_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to https://hooks.example/x")

    slack = build_sink(sink(kind="slack"), transport=httpx.MockTransport(refuse))
    result = await slack.send(message())
    await slack.aclose()
    assert result.error == "sink 's': ConnectError"


def test_backoff_grows_caps_and_honours_retry_after() -> None:
    config = DeliveryConfig(backoff=timedelta(seconds=1), max_backoff=timedelta(seconds=60))
    delays = [backoff_delay(n, config).total_seconds() for n in range(1, 9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(3, config, jitter=0.5).total_seconds() == 2
    assert backoff_delay(3, config, jitter=0.0).total_seconds() == 2  # clamped to [0.5, 1]
    assert backoff_delay(1, config, retry_after=30).total_seconds() == 30


def test_retry_after_parses_seconds_and_dates() -> None:
    assert retry_after("12") == 12.0
    assert retry_after("Wed, 01 May 2024 12:00:30 GMT", now=T0) == 30.0
    assert retry_after("soon") is None
    assert retry_after("999999") == 3600.0


@pytest.mark.parametrize(
    ("fields", "message_"),
    [
        pytest.param({"kind": "webhook"}, "needs 'secret'", id="webhook-secret"),
        pytest.param({"kind": "webhook", "secret": "plain"}, "whsec_", id="whsec"),
        pytest.param({"kind": "slack", "bearer_token": "x"}, "only kind 'alertmanager'", id="auth"),
        pytest.param({"kind": "alertmanager", "username": "u"}, "both", id="half-basic"),
        pytest.param({"kind": "slack", "url": "ftp://x"}, "http", id="url"),
    ],
)
def test_sink_validation(fields: dict[str, Any], message_: str) -> None:
    with pytest.raises(ValueError, match=message_):
        sink(**fields)


def test_routing_by_severity_and_labels() -> None:
    routed = sink(kind="slack", severities=["critical"], match={"team": "ml"})
    assert routed.takes("critical", {"team": "ml", "suite": "qa"})
    assert not routed.takes("warning", {"team": "ml"})
    assert not routed.takes("critical", {"team": "web"})
    assert sink(kind="slack").takes("info", {})


def test_webhook_payload_snapshot() -> None:
    """The documented payload, field for field: a change here is a contract change."""
    payload = build_payload(
        "msg_1", sample_state(T0, sink="s"), event="test", at=T0, public_url=None, sequence=7
    )
    assert payload == {
        "schema_version": "1",
        "id": "msg_1",
        "event": "test",
        "sequence": 7,
        "created_at": "2024-05-01T12:00:00Z",
        "alert": {
            "fingerprint": "test0000000000000",
            "rule": "monitor-test",
            "rule_kind": "test",
            "severity": "info",
            "status": "firing",
            "labels": {
                "alertname": "monitor-test",
                "rule_kind": "test",
                "severity": "info",
                "sink": "s",
            },
            "summary": "test notification from monitor to sink 's'; nothing is wrong",
            "value": 0.0,
            "threshold": None,
            "starts_at": "2024-05-01T12:00:00Z",
            "ends_at": None,
            "details": {},
            "links": {},
        },
    }


async def test_worker_waits_for_retry_after(tmp_path: Path) -> None:
    """A 429 with ``Retry-After: 30`` moves the next attempt 30 s out, beyond the backoff."""
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    try:
        _, transport = capture(429, {"retry-after": "30"})
        slack = build_sink(sink(kind="slack"), transport=transport)
        store.alerts.enqueue_notifications([message()])
        worker = DeliveryWorker(DeliveryConfig(), store, {"s": slack}, clock=lambda: T0)
        assert await worker.deliver_due() == 1
        await worker.aclose()
        (queued,) = store.alerts.list_notifications()
        assert queued.status is OutboxStatus.PENDING and queued.attempts == 1
        assert queued.next_attempt_at == T0 + timedelta(seconds=30)
    finally:
        store.close()
