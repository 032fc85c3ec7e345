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
    (message,) = store.alerts.list_notifications()
    store.alerts.record_delivery_attempt(
        message.id, at=at, status=OutboxStatus.DEAD, error="HTTP 500"
    )
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
    (silence,) = fired.alerts.silences(active_at=datetime.now(UTC) + timedelta(hours=1))
    assert silence.matchers == {"team": "ml"}
    assert fired.alerts.silences(active_at=datetime.now(UTC) + timedelta(hours=3)) == []

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
        store.alerts.add_silence(
            matchers={"team": "ml"}, starts_at=now, ends_at=now + timedelta(hours=1), created_by="t"
        )
        run = Run(3, "qa", "prod", RunStatus.FAILED, "s", now, now, now, "d", "c", 5, 5, "x", ())
        transitions = AlertService(config.alerts, store).handle_sync(RunFinished(run))
        assert [t.notify for t in transitions] == ["firing"]  # state changes, ...
        assert store.alerts.list_notifications() == []  # ... but the webhook stays quiet
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
    [
        ["alerts"],
        ["alerts", "list"],
        ["alerts", "test"],
        ["alerts", "silence"],
        ["alerts", "dead-letters"],
        ["alerts", "dead-letters", "list"],
        ["alerts", "dead-letters", "redrive"],
        ["alerts", "dead-letters", "discard"],
    ],
    ids=lambda c: " ".join(c),
)
def test_alert_commands_have_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.stdout


def test_cli_dead_letters_list_redrive_discard(fired: Store, config_path: Path) -> None:
    runner = CliRunner()
    c = ["-c", str(config_path)]
    (dead,) = fired.alerts.list_notifications(status=OutboxStatus.DEAD)
    listed = runner.invoke(cli, ["alerts", "dead-letters", "list", *c, "--json"])
    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    assert json.loads(line) | {"created_at": None} == {
        "id": dead.id,
        "sink": "hook",
        "fingerprint": dead.fingerprint,
        "event": "firing",
        "sequence": 1,
        "attempts": 1,
        "created_at": None,
        "last_error": "HTTP 500",
    }

    unknown = runner.invoke(
        cli, ["alerts", "dead-letters", "redrive", *c, "--id", dead.id, "--id", "msg_nope"]
    )
    assert unknown.exit_code == 2 and "not dead letters: msg_nope" in unknown.stderr
    assert fired.alerts.list_notifications(status=OutboxStatus.DEAD) == [dead]  # all or nothing
    neither = runner.invoke(cli, ["alerts", "dead-letters", "redrive", *c])
    assert neither.exit_code == 2 and "--id" in neither.output

    redriven = runner.invoke(
        cli,
        ["alerts", "dead-letters", "redrive", *c, "--all", "--by", "ops", "--comment", "hook ok"],
    )
    assert redriven.exit_code == 0, redriven.output
    assert "1 dead letter(s) redriven" in redriven.stdout
    (again,) = fired.alerts.list_notifications()
    assert again.status is OutboxStatus.PENDING
    assert fired.alerts.outbox_stats().by_status["dead"] == 0
    entry = fired.alerts.alert_history()[0]
    assert (entry.from_phase, entry.to_phase) == ("dead", "redriven")
    assert entry.summary.endswith("redriven by ops: hook ok")

    fired.alerts.record_delivery_attempt(again.id, at=again.created_at, status=OutboxStatus.DEAD)
    discarded = runner.invoke(cli, ["alerts", "dead-letters", "discard", *c, "--id", dead.id])
    assert discarded.exit_code == 0, discarded.output
    (row,) = fired.alerts.list_notifications()
    assert row.status is OutboxStatus.DISCARDED
    assert fired.alerts.alert_history()[0].to_phase == "discarded"


async def test_api_dead_letters_need_write_to_act(fired: Store) -> None:
    from monitor.config.server import TokenConfig

    tokens = [
        TokenConfig(name="reader", token="r" * 20, scopes=("read",)),
        TokenConfig(name="ops", token="w" * 20, scopes=("write",)),
    ]
    registry = CollectorRegistry()
    registry.register(StoreCollector(fired, version=__version__))
    app = create_app(fired, registry, version=__version__, tokens=tokens)
    read = {"authorization": "Bearer " + "r" * 20}
    write = {"authorization": "Bearer " + "w" * 20}
    (dead,) = fired.alerts.list_notifications(status=OutboxStatus.DEAD)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        listed = (await client.get("/v1/alerts/dead-letters", headers=read)).json()
        assert [d["id"] for d in listed["dead_letters"]] == [dead.id]
        assert listed["dead_letters"][0]["sequence"] == 1
        url = "/v1/alerts/dead-letters/redrive"
        assert (await client.post(url, json={"all": True})).status_code == 401
        assert (await client.post(url, json={"all": True}, headers=read)).status_code == 403
        both = await client.post(url, json={"all": True, "ids": [dead.id]}, headers=write)
        assert both.status_code == 422
        missing = await client.post(url, json={"ids": ["msg_nope"]}, headers=write)
        assert missing.status_code == 404
        done = await client.post(url, json={"ids": [dead.id], "comment": "back"}, headers=write)
        assert done.status_code == 200, done.text
        assert [m["id"] for m in done.json()["messages"]] == [dead.id]
        metrics = (await client.get("/metrics")).text
        fired.alerts.record_delivery_attempt(dead.id, at=dead.created_at, status=OutboxStatus.DEAD)
        gone = await client.post(
            "/v1/alerts/dead-letters/discard", json={"all": True}, headers=write
        )
        assert gone.json()["action"] == "discarded"
        spec = (await client.get("/openapi.json")).json()["paths"]
    assert "monitor_alert_dead_letters 0.0" in metrics  # the rule resolves after a redrive
    entry = fired.alerts.alert_history()[1]
    assert entry.summary.endswith("redriven by token 'ops': back")
    assert "403" in spec["/v1/alerts/dead-letters/redrive"]["post"]["responses"]
    assert "get" in spec["/v1/alerts/dead-letters"]
