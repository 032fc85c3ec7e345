"""A receiver outage, end to end: shared by ``test_alert_outage.py`` and ``bench/outage.py``.

A webhook receiver (a real HTTP server on a fixed loopback port) and a real Alertmanager
are taken down (the server stopped, Alertmanager killed with SIGKILL, so connections are
refused) while alerts fire and resolve; then both come back on the same ports. Two
delivery workers, each with its own store connection, play two replicas. The scenario
records what each receiver saw and what the outbox holds; the caller asserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response

from monitor.alerts.events import RunFinished
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.config.alerts import AlertsConfig
from monitor.notify.delivery import DeliveryWorker
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus
from monitor.sinks import build_sink
from monitor.store import Store

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
AM_BINARIES = ("prometheus-alertmanager", "alertmanager")
AM_CONFIG = """
route:
  receiver: blackhole
  group_wait: 0s
receivers:
  - name: blackhole
"""

F, S = RunStatus.FAILED, RunStatus.SUCCEEDED
BEFORE = [("m0", F), ("m1", F), ("m2", F)]
"""Alerts firing, and delivered, before the outage."""
DURING = [
    (0.1, "m0", S),
    (0.2, "m3", F),
    (0.3, "m4", F),
    (0.5, "m3", S),
    (0.6, "m1", S),
    (0.8, "m1", F),
    (0.9, "m5", F),
    (0.95, "m2", S),
]
"""(fraction of the outage, model, run status): fire, resolve and flap while down."""
FIRING = {"m1", "m4", "m5"}
RESOLVED = {"m0", "m2", "m3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Hook:
    """The webhook receiver: records every payload in arrival order."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            payload = json.loads(await request.body())
            if payload["id"] != request.headers["webhook-id"]:
                return Response(status_code=400)
            with self.lock:
                self.received.append(payload)
            return Response(status_code=204)

        return app

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last payload per fingerprint."""
        with self.lock:
            return {p["alert"]["fingerprint"]: p for p in self.received}


class Server:
    """uvicorn on a fixed loopback port, in a thread, that can stop and start again."""

    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port
        self.url = f"http://127.0.0.1:{port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, wait: Callable[..., Any]) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self._thread.start()
        wait(lambda: server.started, timeout=10, what="the webhook receiver to listen")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = self._thread = None


class Alertmanager:
    """A real Alertmanager on a fixed port; ``kill()`` is SIGKILL (its alerts are lost)."""

    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "alertmanager.yml").write_text(AM_CONFIG, encoding="utf-8")

    def start(self, wait: Callable[..., Any]) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"alertmanager exited with {proc.returncode}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait(ready, timeout=30, what="alertmanager to be ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def alerts(self) -> dict[str, dict[str, Any]]:
        """Alertmanager's own view: the alerts it lists (active ones), by model label."""
        answer = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        answer.raise_for_status()
        return {a["labels"]["model"]: a for a in answer.json()}


@dataclass
class Outcome:
    """What the scenario observed, for the caller to check."""

    hook: Hook
    am_alerts: dict[str, dict[str, Any]]
    outbox: list[OutboxMessage]
    fingerprints: dict[str, str]
    outage_s: float
    recovery_s: float


def alerts_config(hook_url: str, am_url: str, *, backoff: str, max_backoff: str) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "rules": [{"name": "failed", "kind": "run_failed", "severity": "critical"}],
            "sinks": [
                {"name": "hook", "kind": "webhook", "url": f"{hook_url}/hook", "secret": SECRET},
                {"name": "am", "kind": "alertmanager", "url": am_url, "resend_interval": "1s"},
            ],
            "delivery": {
                "backoff": backoff,
                "max_backoff": max_backoff,
                "poll_interval": "50ms",
                "lease": "10s",
            },
        }
    )


def _finished(model: str, status: RunStatus, run_id: int) -> RunFinished:
    at = datetime.now(UTC)
    error = "boom" if status is RunStatus.FAILED else None
    return RunFinished(Run(run_id, "qa", model, status, "s", at, at, at, "d", "c", 4, 0, error))


@contextlib.asynccontextmanager
async def _running(workers: list[DeliveryWorker]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_outage(
    store_url: str,
    workdir: Path,
    am_binary: str,
    *,
    outage: float,
    backoff: str = "200ms",
    max_backoff: str = "2s",
    wait: Callable[..., Any],
    say: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Fire alerts with both receivers up, take both down for ``outage`` seconds while
    alerts fire and resolve, bring them back, and wait until each has every alert's
    latest state. ``wait`` is ``tests.servers.wait_for`` (the caller's patience)."""
    hook = Hook()
    server = Server(hook.app(), free_port())
    am = Alertmanager(am_binary, free_port(), workdir)
    server.start(wait)
    am.start(wait)
    config = alerts_config(server.url, am.url, backoff=backoff, max_backoff=max_backoff)
    stores = [Store(store_url) for _ in range(3)]
    stores[0].upgrade()
    service = AlertService(config, stores[0])
    workers = [
        DeliveryWorker(config.delivery, s, {c.name: build_sink(c) for c in config.sinks})
        for s in stores[1:]
    ]
    run_ids = iter(range(1, 10_000))
    try:
        async with _running(workers):
            ticking = asyncio.create_task(_tick(service))
            for model, status in BEFORE:
                await service.handle(_finished(model, status, next(run_ids)))
            await asyncio.to_thread(
                wait, lambda: len(hook.latest()) == len(BEFORE), timeout=20, what="first alerts"
            )
            say(f"{len(BEFORE)} alerts firing and delivered; taking both receivers down")
            server.stop()
            am.kill()
            down_at = time.monotonic()
            for fraction, model, status in DURING:
                await asyncio.sleep(max(0.0, down_at + fraction * outage - time.monotonic()))
                await service.handle(_finished(model, status, next(run_ids)))
                say(f"t+{time.monotonic() - down_at:.0f}s: {model} {status.value}")
            await asyncio.sleep(max(0.0, down_at + outage - time.monotonic()))
            up_at = time.monotonic()
            say(f"outage over after {up_at - down_at:.1f}s; both receivers back")
            server.start(wait)
            am.start(wait)
            fingerprints = {
                s.labels["model"]: s.fingerprint for s in stores[0].alerts.alert_states()
            }
            await asyncio.to_thread(
                wait,
                lambda: _settled(hook, am, stores[0], fingerprints),
                timeout=max(60.0, outage / 2),
                what="every alert's latest state at both receivers",
                interval=0.2,
            )
            recovery = time.monotonic() - up_at
            if ticking.done():
                ticking.result()  # the timer died: raise what killed it
            ticking.cancel()
        return Outcome(
            hook=hook,
            am_alerts=am.alerts(),
            outbox=stores[0].alerts.list_notifications(limit=100_000),
            fingerprints=fingerprints,
            outage_s=up_at - down_at,
            recovery_s=recovery,
        )
    finally:
        for w in workers:
            await w.aclose()
        for s in stores:
            s.close()
        server.stop()
        am.kill()


async def _tick(service: AlertService) -> None:
    """The daemon's timer: Alertmanager re-sends come from here."""
    while True:
        await service.handle(service.tick())
        await asyncio.sleep(0.5)


def _settled(hook: Hook, am: Alertmanager, store: Store, fingerprints: dict[str, str]) -> bool:
    """The webhook's last word per alert is its current state, and Alertmanager lists
    exactly the firing alerts; no resolution is still waiting for Alertmanager."""
    latest = hook.latest()
    wanted = {fingerprints[m]: ("firing" if m in FIRING else "resolved") for m in fingerprints}
    if {fp: p["event"] for fp, p in latest.items()} != wanted:
        return False
    rows = store.alerts.list_notifications(limit=100_000)
    if any(m.sink == "hook" and m.status is OutboxStatus.PENDING for m in rows):
        return False
    if any(
        m.sink == "am" and m.event == "resolved" and m.status is OutboxStatus.PENDING for m in rows
    ):
        return False
    try:
        return set(am.alerts()) == FIRING
    except httpx.HTTPError:
        return False
