"""The daemon as users run it: ``monitor run -c`` on the example config, as a subprocess,
against real model servers on loopback."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from monitor.daemon.recovery import CRASHED
from monitor.records import RunStatus
from monitor.store import Store
from tests.servers import ROOT, MonitorProcess, deadline, serve_in_thread, wait_for

pytestmark = pytest.mark.integration


def example_config(tmp_path: Path, *, concurrency: int = 4) -> Path:
    """The shipped example, with only what a second copy must change: a free port, a
    private data directory, the dataset path made absolute; and a quick heartbeat, so a
    crashed run is swept within seconds."""
    text = (ROOT / "config.example.toml").read_text()
    for old, new in [
        ("port = 8787", "port = 0"),
        (
            'data_dir = "monitor-data"',
            f'data_dir = "{tmp_path / "data"}"\nheartbeat_every = "500ms"\nstale_after = "2s"',
        ),
        ('dataset = "monitor/demo/data', f'dataset = "{ROOT}/monitor/demo/data'),
        ("concurrency = 4", f"concurrency = {concurrency}"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def start_daemon(config: Path, model_url: str) -> tuple[MonitorProcess, str]:
    daemon = MonitorProcess("run", "-c", str(config), env={"MONITOR_DEMO_MODEL_URL": model_url})
    port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
    return daemon, f"http://127.0.0.1:{port}"


def runs(api: str) -> list[dict[str, object]]:
    answer: list[dict[str, object]] = httpx.get(f"{api}/v1/runs").json()["runs"]
    return answer


def running_runs(store_dir: Path) -> list[int]:
    store = Store(f"sqlite:///{store_dir / 'monitor.db'}")
    try:
        return [r.id for r in store.runs.list_runs(status=RunStatus.RUNNING)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def demo_model() -> Iterator[str]:
    """The bundled demo model, served by ``monitor demo --model-only`` on a free port."""
    model = MonitorProcess("demo", "--model-only", "--model-port", "0")
    try:
        yield model.wait_for_line(r"listening on (http://\S+)/predict").group(1)
    finally:
        model.proc.send_signal(signal.SIGTERM)
        model.stop()


@pytest.fixture
def slow_model() -> Iterator[str]:
    """A model that takes 200 ms per answer: with concurrency 1 a run lasts 12 s."""
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, str]:
        await asyncio.sleep(0.2)
        return {"prediction": "class_0"}

    with serve_in_thread(app) as url:
        yield url


def test_scheduled_run_is_scored_exported_and_sigterm_stops_cleanly(
    tmp_path: Path, demo_model: str
) -> None:
    daemon, api = start_daemon(example_config(tmp_path), demo_model)
    try:
        done = wait_for(
            lambda: [r for r in runs(api) if r["status"] == "succeeded"],
            timeout=30,
            what="a succeeded run",
        )
        run = done[0]
        assert run["n_cases"] == 60 and run["n_errors"] == 0
        accuracy = next(m for m in run["metrics"] if m["name"] == "accuracy")  # type: ignore[attr-defined]
        assert accuracy["value"] > 0.85
        metrics = httpx.get(f"{api}/metrics").text
        line = next(
            line
            for line in metrics.splitlines()
            if line.startswith("monitor_eval_score{") and 'metric="accuracy"' in line
        )
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(accuracy["value"])
        assert httpx.get(f"{api}/v1/runs/{run['id']}").json()["id"] == run["id"]
        ready = httpx.get(f"{api}/readyz").json()
        assert ready == {"status": "ready", "replica": ready["replica"], "leader": True}
        assert ready["replica"].endswith(f":{daemon.proc.pid}")
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=deadline(10)) == 0
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.output()
    assert running_runs(tmp_path / "data") == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_stop_signal_mid_run_interrupts_within_grace(
    tmp_path: Path, slow_model: str, sig: signal.Signals
) -> None:
    daemon, api = start_daemon(example_config(tmp_path, concurrency=1), slow_model)
    try:
        wait_for(
            lambda: [r for r in runs(api) if r["status"] == "running"],
            timeout=20,
            what="a running run",
        )
        started = time.monotonic()
        daemon.proc.send_signal(sig)
        assert daemon.proc.wait(timeout=deadline(10)) == 0
        assert time.monotonic() - started < 10
    finally:
        daemon.stop()
    assert running_runs(tmp_path / "data") == []
    store = Store(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    try:
        (run,) = store.runs.list_runs()
        assert run.status is RunStatus.INTERRUPTED
    finally:
        store.close()


def test_kill_9_mid_run_then_the_restarted_daemon_sweeps_it_and_schedules_on(
    tmp_path: Path, slow_model: str
) -> None:
    config = example_config(tmp_path, concurrency=1)
    daemon, api = start_daemon(config, slow_model)
    try:
        (victim,) = wait_for(
            lambda: [r for r in runs(api) if r["status"] == "running"],
            timeout=20,
            what="a running run",
        )
        daemon.proc.kill()
        daemon.proc.wait(timeout=deadline(10))
    finally:
        daemon.stop()
    assert running_runs(tmp_path / "data") == [victim["id"]]

    restarted, api = start_daemon(config, slow_model)
    try:
        after = wait_for(
            lambda: (
                (r := httpx.get(f"{api}/v1/runs/{victim['id']}").json())
                and r["status"] != "running"
                and r
            ),
            timeout=20,
            what="the sweep to finish the crashed run",
        )
        assert after["status"] == "interrupted"
        assert after["error"] == CRASHED
        wait_for(
            lambda: [r for r in runs(api) if r["id"] != victim["id"]],
            timeout=20,
            what="a new scheduled run",
        )
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.proc.wait(timeout=deadline(10)) == 0
    finally:
        restarted.stop()
    assert running_runs(tmp_path / "data") == []


def test_monitor_demo_shows_a_score_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """README's first command: `monitor demo` prints its URLs, scores the bundled model
    within seconds, and Ctrl-C stops it cleanly."""
    demo = MonitorProcess(
        "demo", "--port", "0", "--data-dir", str(tmp_path / "data"), "--every", "1h"
    )
    try:
        api = demo.wait_for_line(r"metrics:\s+(http://\S+)/metrics").group(1)

        def score() -> str | None:
            text = httpx.get(f"{api}/metrics").text
            return next(
                (line for line in text.splitlines() if line.startswith("monitor_eval_score{")), None
            )

        line = wait_for(score, timeout=30, what="the demo's first score")
        assert 'suite="wine-holdout"' in line and float(line.rsplit(" ", 1)[1]) > 0.85
        # The URLs it prints open without a token (its token only guards its traffic),
        # and its first run became the suite's baseline.
        runs = httpx.get(f"{api}/v1/runs")
        assert runs.status_code == 200 and runs.json()["runs"]
        baselines = httpx.get(f"{api}/v1/baselines").json()
        assert [b["promoted_by"] for b in baselines] == ["auto"]
        assert httpx.post(f"{api}/v1/baselines", json={"run_id": 1}).status_code == 401
        started = time.monotonic()
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=deadline(10)) == 0
        assert time.monotonic() - started < 10
    finally:
        demo.stop()
    assert "Traceback" not in demo.output()
    assert running_runs(tmp_path / "data") == []
