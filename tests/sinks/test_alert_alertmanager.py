"""A real Alertmanager receives a firing alert, its re-send, and its resolution; verified
through Alertmanager's own ``GET /api/v2/alerts``."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.alerts.events import RunFinished, Tick
from monitor.config.alerts import AlertsConfig
from monitor.notify.delivery import DeliveryWorker
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus
from monitor.sinks import build_sink
from monitor.store import Store
from tests.servers import deadline, find_tool, wait_for

pytestmark = pytest.mark.integration

BINARIES = ("prometheus-alertmanager", "alertmanager")
AM_CONFIG = """
route:
  receiver: blackhole
  group_wait: 0s
receivers:
  - name: blackhole
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """An Alertmanager on loopback with no cluster port; yields its base URL."""
    binary = next((path for b in BINARIES if (path := find_tool(b))), None)
    if binary is None:
        pytest.skip(
            "Alertmanager is not installed (apt-get install prometheus-alertmanager); "
            "its binary is prometheus-alertmanager or alertmanager"
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(AM_CONFIG, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"alertmanager exited: {proc.stderr and proc.stderr.read()!r}")
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=30, what="alertmanager to be ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=deadline(10))
        if proc.stderr is not None:
            proc.stderr.close()


def am_alerts(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v2/alerts", timeout=5)
    answer.raise_for_status()
    alerts: list[dict[str, Any]] = answer.json()
    return [a for a in alerts if a["labels"].get("alertname") == "qa-failed"]


def run(status: RunStatus, at: datetime) -> RunFinished:
    return RunFinished(Run(5, "qa", "prod", status, "s", at, at, at, "d", "c", 4, 0, "boom", ()))


async def test_alertmanager_gets_firing_then_resolved(alertmanager: str, tmp_path: Path) -> None:
    config = AlertsConfig.model_validate(
        {
            "rules": [{"name": "qa-failed", "kind": "run_failed", "severity": "critical"}],
            "sinks": [{"name": "am", "kind": "alertmanager", "url": alertmanager}],
        }
    )
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    # The story happens in the recent past, so the resolution's endsAt has passed for
    # Alertmanager too.
    now = datetime.now(UTC) - timedelta(minutes=10)
    clock = [now]
    service = AlertService(config, store, clock=lambda: clock[0])
    worker = DeliveryWorker(
        config.delivery, store, {"am": build_sink(config.sinks[0])}, clock=lambda: clock[0]
    )
    try:
        await service.handle(run(RunStatus.FAILED, now))
        assert await worker.deliver_due() == 1
        (firing,) = am_alerts(alertmanager)
        assert firing["status"]["state"] == "active"
        assert firing["labels"] == {
            "alertname": "qa-failed",
            "severity": "critical",
            "rule_kind": "run_failed",
            "suite": "qa",
            "model": "prod",
        }
        assert "run failed: boom" in firing["annotations"]["summary"]

        # While firing, the timer re-sends it before Alertmanager's resolve_timeout.
        clock[0] = now + timedelta(minutes=2)
        await service.handle(Tick(now=clock[0], since=now))
        assert await worker.deliver_due() == 1
        assert len(am_alerts(alertmanager)) == 1  # same labels: the same alert

        clock[0] = now + timedelta(minutes=3)
        await service.handle(run(RunStatus.SUCCEEDED, clock[0]))
        assert await worker.deliver_due() == 1
        # Alertmanager stops listing an alert once its endsAt has passed.
        wait_for(lambda: am_alerts(alertmanager) == [], timeout=10, what="the alert to resolve")
        delivered = [m.event for m in reversed(store.alerts.list_notifications())]
        assert delivered == ["firing", "firing", "resolved"]
    finally:
        await worker.aclose()
        store.close()


def test_cli_test_alert_is_resolved_in_alertmanager(alertmanager: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    config = tmp_path / "monitor.toml"
    config.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "monitor.db"}"
[alerts]
[[alerts.sinks]]
name = "am"
kind = "alertmanager"
url = "{alertmanager}"
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["alerts", "test", "-c", str(config), "--sink", "am"])
    assert result.exit_code == 0, result.output
    assert "delivered to sink 'am' and resolved" in result.stdout

    def listed() -> list[dict[str, Any]]:
        answer = httpx.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=5)
        answer.raise_for_status()
        return [a for a in answer.json() if a["labels"].get("alertname") == "monitor-test"]

    # Alertmanager accepted both (exit 0); the resolution ended it, so nothing is active
    # for Alertmanager to keep forwarding. Without it the sample stays active for minutes.
    assert listed() == []
