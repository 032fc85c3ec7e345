"""The daemon killed with SIGKILL after an alert fired but before its webhook was
delivered: after a restart the same notification (same id) arrives, and the still-firing
alert is neither re-fired nor forgotten."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response

from monitor.alerts.engine import Phase
from monitor.alerts.records import OutboxStatus
from monitor.store import Store
from tests.servers import ROOT, MonitorProcess, serve_in_thread, wait_for

pytestmark = pytest.mark.integration

KEY = b"crash-test-signing-key-32-bytes!"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


@dataclass
class Hook:
    down: bool = True
    attempts: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()
    app = FastAPI()

    @app.post("/hook")
    async def receive(request: Request) -> Response:
        body = await request.body()
        mid, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        digest = hmac.new(KEY, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()
        if request.headers["webhook-signature"] != "v1," + base64.b64encode(digest).decode():
            return Response(status_code=401)
        with state.lock:
            state.attempts.append(mid)
            if state.down:
                return Response(status_code=503)
            state.delivered.append(mid)
        return Response(status_code=204)

    with serve_in_thread(app) as url:
        yield state, f"{url}/hook"


@pytest.fixture
def broken_model() -> Iterator[str]:
    """A model endpoint that answers 500 to everything: every run fails."""
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> Response:
        return Response(status_code=500)

    with serve_in_thread(app) as url:
        yield url


def write_config(tmp_path: Path, model_url: str, hook_url: str) -> Path:
    text = (ROOT / "config.example.toml").read_text()
    text = text[: text.index("# Alerts: rules")]  # replaced by the section below
    for old, new in [
        ("port = 8787", "port = 0"),
        ('data_dir = "monitor-data"', f'data_dir = "{tmp_path / "data"}"'),
        ('dataset = "monitor/demo/data', f'dataset = "{ROOT}/monitor/demo/data'),
        (
            'url = "${MONITOR_DEMO_MODEL_URL:-http://127.0.0.1:8788}/predict"',
            f'url = "{model_url}/predict"',
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    text += f"""
[alerts]
evaluate_every = "1s"
[alerts.delivery]
backoff = "100ms"
max_backoff = "300ms"
poll_interval = "100ms"
[[alerts.rules]]
name = "wine-failed"
kind = "run_failed"
severity = "critical"
[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{hook_url}"
secret = "${{HOOK_SECRET}}"
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def outbox(store_path: Path) -> list[tuple[str, OutboxStatus, int]]:
    store = Store(f"sqlite:///{store_path}")
    try:
        return [(m.id, m.status, m.attempts) for m in store.alerts.list_notifications()]
    finally:
        store.close()


def test_sigkill_before_delivery_delivers_after_restart(
    tmp_path: Path, hook: tuple[Hook, str], broken_model: str
) -> None:
    receiver, hook_url = hook
    config = write_config(tmp_path, broken_model, hook_url)
    db = tmp_path / "data" / "monitor.db"
    env = {"HOOK_SECRET": SECRET}

    first = MonitorProcess("run", "-c", str(config), env=env)
    try:
        first.wait_for_line(r"HTTP API on")
        # The alert fired (its outbox row exists) and delivery has failed at least once.
        queued = wait_for(
            lambda: [m for m in outbox(db) if m[2] >= 1] if db.exists() else None,
            timeout=60,
            what="a failed delivery attempt",
        )
    finally:
        first.stop()  # SIGKILL: no shutdown, no chance to deliver
    assert first.proc.returncode == -9
    (message_id, status, _), *_ = queued
    assert status is OutboxStatus.PENDING and receiver.delivered == []

    receiver.down = False
    second = MonitorProcess("run", "-c", str(config), env=env)
    try:
        second.wait_for_line(r"HTTP API on")
        wait_for(lambda: receiver.delivered, timeout=60, what="the delivery after restart")
        # Let the restarted daemon run and fail again: the alert is still firing.
        second.wait_for_line(r"run \d+ failed", timeout=60)
        wait_for(
            lambda: all(s is OutboxStatus.DELIVERED for _, s, _ in outbox(db)),
            timeout=30,
            what="an empty backlog",
        )
    finally:
        second.stop()
    assert receiver.delivered == [message_id]
    assert set(receiver.attempts) == {message_id}
    assert [m[0] for m in outbox(db)] == [message_id]  # not re-fired after the restart
    store = Store(f"sqlite:///{db}")
    try:
        (state,) = store.alerts.alert_states()
        assert state.phase is Phase.FIRING
    finally:
        store.close()
