"""Webhook delivery end to end on loopback: signatures verify, and a receiver that is down
for a while gets every notification once it is back, under the same ids."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from monitor.alerts.events import RunFinished
from monitor.alerts.records import OutboxStatus
from monitor.config.alerts import AlertsConfig
from monitor.notify.delivery import DeliveryWorker
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus
from monitor.sinks import build_sink, sign
from monitor.store import Store
from tests.servers import ROOT, deadline, serve_in_thread, wait_for

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def verify(headers: dict[str, str], body: bytes, key: bytes = KEY) -> bool:
    """A receiver's check, written from the Standard Webhooks spec (not monitor's code)."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [part.split(",", 1)[1] for part in headers["webhook-signature"].split(" ")]
    return any(hmac.compare_digest(expected, g) for g in given)


@dataclass
class Receiver:
    """A webhook receiver that can be switched down (answers 503) and back up."""

    down: bool = False
    attempts: list[str] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            with self.lock:
                self.attempts.append(headers["webhook-id"])
                if not verify(headers, body):
                    self.bad_signatures += 1
                    return Response(status_code=401)
                if self.down:
                    return Response(status_code=503)
                payload = json.loads(body)
                assert payload["id"] == headers["webhook-id"]
                self.delivered.append(payload)
            return Response(status_code=204)

        return app


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    with serve_in_thread(r.app()) as url:
        yield r, url


def alerts_config(url: str, **delivery: Any) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "rules": [{"name": "failed", "kind": "run_failed", "severity": "critical"}],
            "sinks": [{"name": "hook", "kind": "webhook", "url": f"{url}/hook", "secret": SECRET}],
            "delivery": {"backoff": "10ms", "max_backoff": "50ms", "poll_interval": "20ms"}
            | delivery,
        }
    )


def finished(model: str, status: RunStatus, at: datetime) -> RunFinished:
    return RunFinished(
        Run(1, "qa", model, status, "schedule", at, at, at, "d", "c", 10, 0, "boom", ())
    )


async def test_receiver_down_then_up_gets_each_alerts_latest_state(
    store: Store, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    config = alerts_config(url)
    service = AlertService(config, store, public_url="https://monitor.example.org")
    worker = DeliveryWorker(config.delivery, store, {"hook": build_sink(config.sinks[0])})
    now = datetime.now(UTC)
    rec.down = True
    for model, status in [
        ("a", RunStatus.FAILED),
        ("b", RunStatus.FAILED),
        ("a", RunStatus.SUCCEEDED),
    ]:
        await service.handle(finished(model, status, now))
    queued = {m.id: m for m in store.alerts.list_notifications()}
    assert len(queued) == 3

    def settled() -> bool:
        return all(
            m.status in (OutboxStatus.DELIVERED, OutboxStatus.SUPERSEDED)
            for m in store.alerts.list_notifications()
        )

    task = asyncio.create_task(worker.run())
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: all(
                m.attempts >= 3
                for m in store.alerts.list_notifications(status=OutboxStatus.PENDING)
            ),
            timeout=20,
            what="three failed attempts per waiting notification",
        )
        rec.down = False
        await asyncio.to_thread(wait_for, settled, timeout=20, what="the outbox to settle")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.aclose()

    by_status = {m.id: m.status for m in store.alerts.list_notifications()}
    delivered = {i for i, s in by_status.items() if s is OutboxStatus.DELIVERED}
    ids = [p["id"] for p in rec.delivered]
    assert sorted(ids) == sorted(delivered)  # each exactly once
    assert set(rec.attempts) == delivered  # retries reused the same ids; nothing stale sent
    assert rec.bad_signatures == 0
    events = sorted(
        (p["alert"]["labels"]["model"], p["event"], p["sequence"]) for p in rec.delivered
    )
    # a's firing was superseded by its resolution before the receiver came back.
    assert events == [("a", "resolved", 2), ("b", "firing", 1)]
    (superseded,) = [queued[i] for i, s in by_status.items() if s is OutboxStatus.SUPERSEDED]
    assert (superseded.event, superseded.sequence) == ("firing", 1)
    first = next(p for p in rec.delivered if p["event"] == "firing")
    assert first["schema_version"] == "1"
    assert first["alert"]["links"] == {"run": "https://monitor.example.org/v1/runs/1"}


async def test_dead_letter_once_max_age_is_reached(
    store: Store, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.down = True
    # Long enough for a second attempt on a loaded runner (the first one, a store write
    # and a request, can take longer than a fixed 300 ms there), short enough to wait for.
    max_age = timedelta(seconds=deadline(0.5))
    config = alerts_config(url, max_age=f"{max_age.total_seconds() * 1000:.0f}ms")
    service = AlertService(config, store)
    worker = DeliveryWorker(config.delivery, store, {"hook": build_sink(config.sinks[0])})
    await service.handle(finished("a", RunStatus.FAILED, datetime.now(UTC)))
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: store.alerts.list_notifications(status=OutboxStatus.DEAD),
            timeout=20,
            what="a dead letter",
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await worker.aclose()
    (dead,) = store.alerts.list_notifications(status=OutboxStatus.DEAD)
    assert dead.attempts >= 2  # retried while younger than max_age, not after one 503
    assert dead.last_error == f"sink 'hook': HTTP 503 (still failing after max_age {max_age})"
    assert rec.attempts == [dead.id] * dead.attempts


def test_signature_changes_with_any_byte() -> None:
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
    body = b'{"a":1}'
    headers["webhook-signature"] = sign(KEY, "msg_1", 1700000000, body)
    assert verify(headers, body)
    assert not verify(headers, b'{"a":2}')
    assert not verify(headers, body, key=b"x" * 32)


def test_the_documented_receiver_verifies_a_real_request() -> None:
    """The receiver example in docs/alerting.md, run as written against a signed request."""
    doc = (ROOT / "docs" / "alerting.md").read_text(encoding="utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code.replace('"whsec_..."', repr(SECRET)), namespace)
    body = b'{"id":"msg_1","schema_version":"1"}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(KEY, "msg_1", now, body),
    }
    assert namespace["verify"](headers, body) == {"id": "msg_1", "schema_version": "1"}
    assert namespace["verify"](headers, body) == {}  # a retry: de-duplicated
    assert namespace["verify"](headers, body + b" ") is None
    stale = {**headers, "webhook-timestamp": str(now - 3600)}
    assert namespace["verify"](stale, body) is None
