"""``monitor run`` stopped by SIGTERM keeps its promise: in-flight runs get
``shutdown_grace`` to finish, and only then are they cancelled and stored interrupted."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from monitor.records import RunStatus
from monitor.store import Store
from tests.daemon.test_daemon_process import example_config
from tests.servers import MonitorProcess, deadline, serve_in_thread

pytestmark = pytest.mark.integration

CASES = 60  # the example suite's dataset
GRACE = deadline(6)  # seconds; scaled with the machine, like every other wait


def model_taking(seconds_per_case: float) -> Iterator[str]:
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, str]:
        await asyncio.sleep(seconds_per_case)
        return {"prediction": "class_0"}

    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def half_grace_model() -> Iterator[str]:
    """A run of the example suite at concurrency 1 needs half the grace."""
    yield from model_taking(GRACE / 2 / CASES)


@pytest.fixture
def twice_grace_model() -> Iterator[str]:
    """... and here twice the grace."""
    yield from model_taking(2 * GRACE / CASES)


def stop_during_first_run(tmp_path: Path, model_url: str) -> tuple[MonitorProcess, float, float]:
    """Start ``monitor run``, SIGTERM it once the first run has started; return the
    process, when the signal was sent and when the process exited (monotonic)."""
    config = example_config(tmp_path, concurrency=1)
    text = config.read_text().replace('shutdown_grace = "5s"', f'shutdown_grace = "{GRACE}s"')
    config.write_text(text)
    daemon = MonitorProcess("run", "-c", str(config), env={"MONITOR_DEMO_MODEL_URL": model_url})
    daemon.wait_for_line(r"run 1 started", timeout=60)
    signalled = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(timeout=GRACE + deadline(30))
    return daemon, signalled, time.monotonic()


def first_run(tmp_path: Path) -> tuple[RunStatus, str | None]:
    store = Store(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    try:
        run = store.runs.get_run(1)
        assert run is not None
        return run.status, run.error
    finally:
        store.close()


def test_a_run_that_needs_half_the_grace_finishes(tmp_path: Path, half_grace_model: str) -> None:
    daemon, _, _ = stop_during_first_run(tmp_path, half_grace_model)
    output = daemon.output()
    assert daemon.proc.returncode == 0, output
    assert first_run(tmp_path)[0] is RunStatus.SUCCEEDED, output
    assert "Traceback" not in output and " ERROR " not in output, output


def test_a_run_that_needs_twice_the_grace_is_interrupted_at_the_grace(
    tmp_path: Path, twice_grace_model: str
) -> None:
    daemon, signalled, exited = stop_during_first_run(tmp_path, twice_grace_model)
    output = daemon.output()
    assert daemon.proc.returncode == 0, output
    status, error = first_run(tmp_path)
    assert status is RunStatus.INTERRUPTED, output
    assert error is not None and "stopped before the run finished" in error
    # It ran for its whole grace (not cancelled at once), and not much past it.
    assert exited - signalled >= GRACE * 0.95, output
    assert "Traceback" not in output and " ERROR " not in output, output
