"""Windows missed while the daemon was down, as users run it: ``monitor run`` in a
subprocess, killed with SIGKILL, started again; every window judged once, in order."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from monitor.config import load_config
from monitor.store import Store
from monitor.streams.batch import encode, parse_batch
from tests.servers import MonitorProcess, deadline, wait_for

pytestmark = pytest.mark.integration

TOKEN = "restart-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def write_config(tmp_path: Path, window: str) -> Path:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 2000,
        "alcohol": rng.normal(10, 1, 2000),
        "region": rng.choice(["north", "south", "east"], 2000, p=[0.5, 0.3, 0.2]),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
tokens = [{{ name = "ci", token = "${{RESTART_TOKEN}}", scopes = ["read", "write"] }}]

[store]
data_dir = "{tmp_path / "data"}"

[[streams]]
name = "wine"
timestamp = "ts"
numerical = ["alcohol"]
categorical = ["region"]
reference = {{ file = "{tmp_path / "reference.csv"}" }}
window = {window}
schedule = {{ every = "1s", run_at_start = true }}
"""
    )
    return path


def start(config: Path) -> tuple[MonitorProcess, str]:
    daemon = MonitorProcess("run", "-c", str(config), env={"RESTART_TOKEN": TOKEN})
    port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
    return daemon, f"http://127.0.0.1:{port}"


def records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "ts": "2024-05-01T12:00:00Z",
            "alcohol": float(rng.normal(10, 1)),
            "region": str(rng.choice(["north", "south", "east"])),
        }
        for _ in range(n)
    ]


def reports(api: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{api}/v1/streams/wine/reports", params={"limit": 200}, headers=AUTH)
    found: list[dict[str, Any]] = answer.json()["reports"]
    return list(reversed(found))  # oldest first


def kill_9(daemon: MonitorProcess) -> None:
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(timeout=deadline(10))
    daemon.stop()


def test_row_windows_that_arrived_while_down_are_judged_once_after_a_restart(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "{ rows = 100, min_rows = 50 }")
    daemon, api = start(config)
    try:
        answer = httpx.post(f"{api}/v1/streams/wine/records", json=records(300, 1), headers=AUTH)
        assert answer.status_code == 201, answer.text
        wait_for(lambda: len(reports(api)) >= 3, timeout=30, what="three reports")
        kill_9(daemon)
    finally:
        daemon.stop()
    # While it is down, another replica ingests four more windows into the same store.
    stream = load_config(config, environ={"RESTART_TOKEN": TOKEN}).streams[0]
    store = Store(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    try:
        for seed in range(4):
            batch = parse_batch(stream, json.dumps(records(100, 10 + seed)).encode(), "json")
            store.streams.append_batch(
                "wine",
                received_at=datetime.now().astimezone(),
                first_ts=batch.first_ts,
                last_ts=batch.last_ts,
                n_rows=batch.n_rows,
                payload=encode(batch.table),
            )
    finally:
        store.close()
    restarted, api = start(config)
    try:
        wait_for(lambda: len(reports(api)) >= 7, timeout=30, what="seven reports")
        expected = [f"rows:{k * 100}-{k * 100 + 100}" for k in range(7)]
        assert [r["window_key"] for r in reports(api)] == expected
        # The restarted daemon judged exactly the four it had missed, oldest first.
        restarted.wait_for_line(r"stream wine: window rows:600-700")
        assert judged_keys(restarted) == expected[3:]
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.proc.wait(timeout=deadline(10)) == 0
    finally:
        restarted.stop()


def judged_keys(daemon: MonitorProcess) -> list[str]:
    """The windows a daemon's log says it judged, in order."""
    marker = "stream wine: window "
    return [
        line.split(marker, 1)[1].split(": ", 1)[0]
        for line in daemon.output().splitlines()
        if marker in line
    ]


def test_time_windows_missed_across_a_restart_are_judged_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, '{ every = "1s", min_rows = 1 }')
    daemon, api = start(config)
    try:
        wait_for(lambda: len(reports(api)) >= 2, timeout=30, what="two time windows judged")
        kill_9(daemon)
    finally:
        daemon.stop()
    down_at = time.time()
    # Stay down for at least three whole windows (a condition on the clock, not a race).
    wait_for(lambda: time.time() > down_at + 3.5, timeout=10, what="three missed windows")
    restarted, api = start(config)
    try:

        def caught_up() -> list[dict[str, Any]] | None:
            found = reports(api)
            last = datetime.fromisoformat(found[-1]["window_end"]).timestamp()
            return found if last > down_at + 3.5 else None

        found = wait_for(caught_up, timeout=30, what="the windows missed while down")
        starts = [datetime.fromisoformat(r["window_start"]) for r in found]
        ends = [datetime.fromisoformat(r["window_end"]) for r in found]
        assert len(set(starts)) == len(starts)  # none judged twice
        assert starts[1:] == ends[:-1]  # none skipped: each starts where the last ended
        missed = [
            r["window_key"] for r, s in zip(found, starts, strict=True) if s.timestamp() > down_at
        ]
        assert len(missed) >= 3
        # The restarted daemon judged the windows missed while it was down, each once.
        judged = judged_keys(restarted)
        assert set(missed) <= set(judged) and len(set(judged)) == len(judged)
        restarted.proc.send_signal(signal.SIGTERM)
        assert restarted.proc.wait(timeout=deadline(10)) == 0
    finally:
        restarted.stop()
