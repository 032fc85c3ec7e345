"""The operator surface: GET /v1/alerts, alert metrics, and ``monitor alerts ...``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.alerts.events import RunFinished
from monitor.alerts.records import OutboxStatus
from monitor.api import create_app
from monitor.cli import cli
from monitor.config import load_config
from monitor.metrics.collector import StoreCollector
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus
from monitor.store import Store
from tests.servers import serve_in_thread

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


def write_config(tmp_path: Path, hook_url: str = "http://127.0.0.1:9/hook") -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "monitor.db"}"

[alerts]
[[alerts.rules]]
name = "failed"
kind = "run_failed"
severity = "critical"
labels = {{ team = "ml" }}

[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{hook_url}"
secret = "${{HOOK_SECRET}}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    return write_config(tmp_path)


@pytest.fixture
def fired(config_path: Path) -> Iterator[Store]:
    """A store where the ``failed`` rule fired for one model; its notification is dead."""
    config = load_config(config_path)
    store = Store(config.store.effective_url)
    store.upgrade()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    run = Run(3, "qa", "prod", RunStatus.FAILED, "s", at, at, at, "d", "c", 5, 5, "boom", ())
    AlertService(config.alerts, store).handle_sync(RunFinished(run))
    (message,) = store.list_notifications()
    store.record_delivery_attempt(message.id, at=at, status=OutboxStatus.DEAD, error="HTTP 500")
    yield store
    store.close()


async def test_api_lists_alerts_history_and_dead_letters(fired: Store) -> None:
    registry = CollectorRegistry()
    registry.register(StoreCollector(fired, version=__version__))
    app = create_app(fired, registry, version=__version__)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        page = (await client.get("/v1/alerts")).json()
        none_resolved = (await client.get("/v1/alerts", params={"state": "resolved"})).json()
        metrics = (await client.get("/metrics")).text

    (alert,) = page["alerts"]
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["labels"]["team"] == "ml" and alert["links"] == {"run": "/v1/runs/3"}
    assert [(h["from_state"], h["to_state"]) for h in page["history"]] == [("inactive", "firing")]
    (dead,) = page["dead_letters"]
    assert dead["status"] == "dead" and dead["last_error"] == "HTTP 500"
    assert none_resolved["alerts"] == []

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    firing = (("rule", "failed"), ("severity", "critical"), ("state", "firing"))
    assert samples[("monitor_alerts", firing)] == 1
    assert samples[("monitor_alert_dead_letters", ())] == 1
    assert samples[("monitor_alert_outbox_backlog", ())] == 0
    assert samples[("monitor_alert_deliveries_total", (("outcome", "failed"),))] == 1


def test_cli_list_and_silence(fired: Store, config_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["alerts", "list", "-c", str(config_path), "--json"])
    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    assert json.loads(line)["state"] == "firing"

    made = runner.invoke(
        cli, ["alerts", "silence", "-c", str(config_path), "--match", "team=ml", "--for", "2h"]
    )
    assert made.exit_code == 0, made.output
    (silence,) = fired.silences(active_at=datetime.now(UTC) + timedelta(hours=1))
    assert silence.matchers == {"team": "ml"}
    assert fired.silences(active_at=datetime.now(UTC) + timedelta(hours=3)) == []

    bad = runner.invoke(
        cli, ["alerts", "silence", "-c", str(config_path), "--match", "team", "--for", "2h"]
    )
    assert bad.exit_code == 2 and "LABEL=VALUE" in bad.output


def test_silence_stops_direct_sinks_only(config_path: Path, tmp_path: Path) -> None:
    config = load_config(config_path)
    store = Store(config.store.effective_url)
    store.upgrade()
    try:
        now = datetime.now(UTC)
        store.add_silence(
            matchers={"team": "ml"}, starts_at=now, ends_at=now + timedelta(hours=1), created_by="t"
        )
        run = Run(3, "qa", "prod", RunStatus.FAILED, "s", now, now, now, "d", "c", 5, 5, "x", ())
        transitions = AlertService(config.alerts, store).handle_sync(RunFinished(run))
        assert [t.notify for t in transitions] == ["firing"]  # state changes, ...
        assert store.list_notifications() == []  # ... but the webhook stays quiet
    finally:
        store.close()


def test_cli_test_sends_a_signed_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        got.append({**request.headers, "body": (await request.body()).decode()})
        return Response(status_code=200)

    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with serve_in_thread(app) as url:
        path = write_config(tmp_path, f"{url}/hook")
        result = CliRunner().invoke(cli, ["alerts", "test", "-c", str(path), "--sink", "hook"])
        unknown = CliRunner().invoke(cli, ["alerts", "test", "-c", str(path), "--sink", "nope"])
    assert result.exit_code == 0, result.output
    (request,) = got
    assert request["webhook-signature"].startswith("v1,")
    assert json.loads(request["body"])["event"] == "test"
    assert unknown.exit_code == 2 and "configured: hook" in unknown.stderr


def test_cli_test_reports_an_unreachable_sink(config_path: Path) -> None:
    result = CliRunner().invoke(cli, ["alerts", "test", "-c", str(config_path), "--sink", "hook"])
    assert result.exit_code == 3 and "not delivered" in result.stderr
    assert SECRET not in result.output


@pytest.mark.parametrize(
    "command",
    [["alerts"], ["alerts", "list"], ["alerts", "test"], ["alerts", "silence"]],
    ids=lambda c: " ".join(c),
)
def test_alert_commands_have_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.stdout
