"""Runs queued through the API under the daemon's lifecycle: a graceful shutdown drains
then interrupts the running one and leaves the queued one in the queue (for another
replica, or the next start), a daemon that is stopping refuses new ones (503), and after
a SIGKILL the next start interrupts the running one once its lease expired and runs the
queued one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.api.requests import SHUTTING_DOWN, SubmitRefused
from monitor.daemon.recovery import CRASHED
from monitor.records import Run, RunStatus
from monitor.runs.runner import INTERRUPTED
from monitor.store import Store
from tests.api.conftest import (
    READ,
    WRITE,
    WRITE_TOKEN,
    MakeConfig,
    ModelServer,
    running,
    served_app,
    status_of,
)
from tests.servers import MonitorProcess, deadline, until, wait_for

ONE = {"benchmarkId": "qa", "models": [{"id": "prod"}]}


def runs_of(config_url: str, request_id: str) -> tuple[Run, ...]:
    store = Store(config_url)
    try:
        found = store.runs.get_run_request(request_id)
    finally:
        store.close()
    assert found is not None
    return found.runs


async def test_shutdown_interrupts_the_running_run_and_leaves_the_queued_one_queued(
    make_config: MakeConfig, model_server: ModelServer
) -> None:
    config = make_config()  # shutdown_grace = 200ms
    model_server.hold.clear()
    async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as http:
        first = (await http.post("/v1/runs", json=ONE, headers=WRITE)).json()["runId"]

        async def started() -> bool:
            return model_server.calls.get("good", 0) > 0

        await until(started, timeout=30, what="the first run to call the model")
        second = (await http.post("/v1/runs", json=ONE, headers=WRITE)).json()["runId"]
        assert (await status_of(http, second))["status"] == "queued"
        daemon.request_stop()
        with pytest.raises(SubmitRefused):
            daemon.submit(config.suites[0], [])
    url = config.store.effective_url
    (held,) = runs_of(url, first)
    (waiting,) = runs_of(url, second)
    assert (held.status, held.error) == (RunStatus.INTERRUPTED, INTERRUPTED)
    assert (waiting.status, waiting.error) == (RunStatus.QUEUED, None)
    assert waiting.started_at is None and waiting.finished_at is None
    store = Store(url)
    try:
        assert store.queue.leases() == []  # nothing held: any replica may claim it
    finally:
        store.close()


def test_a_stopping_daemon_answers_503(make_config: MakeConfig, store: Store) -> None:
    def refuse(suite: Any, queued: Any) -> None:
        raise SubmitRefused("shutting down")

    with (
        served_app(make_config(), store, refuse) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        answer = http.post("/v1/runs", json=ONE, headers=WRITE)
        (run,) = store.runs.list_runs()
        request_id = run.request_id
        status = http.get(f"/v1/runs/{request_id}", headers=READ).json()
    assert answer.status_code == 503 and answer.json() == {"detail": SHUTTING_DOWN}
    assert (run.status, run.error) == (RunStatus.INTERRUPTED, SHUTTING_DOWN)
    assert status["status"] == "failed" and SHUTTING_DOWN in status["error"]


def test_no_daemon_answers_503_and_stores_nothing(make_config: MakeConfig, store: Store) -> None:
    with (
        served_app(make_config(), store, None) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        answer = http.post("/v1/runs", json=ONE, headers=WRITE)
    assert answer.status_code == 503 and "does not execute runs" in answer.json()["detail"]
    assert store.runs.list_runs() == []


def write_config(tmp_path: Path, config: MakeConfig) -> Path:
    """The configuration ``make_config`` builds, as a TOML file for ``monitor run``."""
    built = config()
    model, suite = built.models[0], built.suites[0]
    assert model.adapter == "openai"
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
shutdown_grace = "200ms"
allowed_endpoint_prefixes = {json.dumps(list(built.server.allowed_endpoint_prefixes))}
[[server.tokens]]
name = "ci"
token = "${{API_TOKEN}}"
scopes = ["write"]
[store]
data_dir = "{tmp_path / "data"}"
heartbeat_every = "500ms"
stale_after = "2s"
[[models]]
name = "prod"
adapter = "openai"
url = "{model.url}"
model = "good"
prompt = "{{{{question}}}}"
[[suites]]
name = "qa"
dataset = "{suite.dataset}"
task = "text"
expected = "answer"
metrics = ["exact-match", "f1-score"]
models = ["prod"]
"""
    )
    return path


@pytest.mark.integration
def test_sigkill_leaves_the_running_run_to_the_sweep_and_the_queued_one_to_the_queue(
    tmp_path: Path, make_config: MakeConfig, model_server: ModelServer
) -> None:
    config = write_config(tmp_path, make_config)
    env = {"API_TOKEN": WRITE_TOKEN}
    store_url = f"sqlite:///{tmp_path / 'data' / 'monitor.db'}"
    model_server.hold.clear()
    first = MonitorProcess("run", "-c", str(config), env=env)
    try:
        port = first.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=WRITE) as http:
            running_id = http.post("/v1/runs", json=ONE).json()["runId"]
            wait_for(lambda: model_server.calls.get("good"), timeout=30, what="the first run")
            queued_id = http.post("/v1/runs", json=ONE).json()["runId"]
            assert http.get(f"/v1/runs/{queued_id}").json()["status"] == "queued"
    finally:
        first.stop()  # SIGKILL: no shutdown, nothing gets to mark the runs
    assert first.proc.returncode == -9
    assert [r.status for r in runs_of(store_url, running_id)] == [RunStatus.RUNNING]
    assert [r.status for r in runs_of(store_url, queued_id)] == [RunStatus.QUEUED]

    before = datetime.now(UTC)
    second = MonitorProcess("run", "-c", str(config), env=env)
    try:
        port = second.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        second.wait_for_line(r"sweep: leases without a heartbeat .*: interrupted \[\d+\]")
        (waiting,) = runs_of(store_url, queued_id)
        second.wait_for_line(rf"claimed run {waiting.id} \(qa x prod, api\)")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=WRITE) as http:
            status = http.get(f"/v1/runs/{running_id}").json()
    finally:
        second.stop()
    (run,) = runs_of(store_url, running_id)
    assert (run.status, run.error) == (RunStatus.INTERRUPTED, CRASHED)
    assert run.finished_at is not None and run.finished_at >= before
    assert status["status"] == "failed" and status["error"] == f"prod: interrupted: {CRASHED}"
