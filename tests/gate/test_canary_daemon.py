"""``monitor canary`` end to end: a real daemon scores two streams' windows with their
labels, and the command, a subprocess, watches them over HTTP and exits with its decision
(a worse candidate is rolled back before ``--duration`` ends; an equal one is promoted when
it ends), writing its three reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from monitor.config import parse_config
from monitor.daemon.lifecycle import Daemon
from tests.servers import MonitorProcess, deadline, until

READ_TOKEN = "canary-read-token-0123456789"
WRITE_TOKEN = "canary-write-token-0123456789"
WINDOW = 100


def stream(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "timestamp": "ts",
        "record_id": "id",
        "numerical": ["x"],
        "prediction": "pred",
        "prediction_kind": "categorical",
        "label": "y",
        "reference": {"file": "reference.csv"},
        "window": {"rows": WINDOW, "min_rows": WINDOW},
        "schedule": {"every": "1s", "run_at_start": True},
        "performance": {"min_labels": 30, "metrics": ["accuracy"]},
    }


def window(name: str, first: int, right: int) -> list[dict[str, Any]]:
    """One window of labelled records, exactly ``right`` of them predicted right."""
    rng = np.random.default_rng(first)
    truth = rng.integers(0, 2, WINDOW)
    hit = np.zeros(WINDOW, bool)
    hit[rng.choice(WINDOW, right, replace=False)] = True
    return [
        {
            "ts": "2026-01-01T00:00:00Z",
            "id": f"{name}-{first + i}",
            "x": float(rng.normal()),
            "pred": str(truth[i] if hit[i] else 1 - truth[i]),
            "y": str(truth[i]),
        }
        for i in range(WINDOW)
    ]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[str]:
    rng = np.random.default_rng(0)
    rows = ["ts,x,pred,y"] + [f"2025-12-01T00:00:00Z,{rng.normal():.4f},1,1" for _ in range(200)]
    (tmp_path / "reference.csv").write_text("\n".join(rows) + "\n")
    raw = {
        "server": {
            "port": 0,
            "tokens": [
                {"name": "feed", "token": WRITE_TOKEN, "scopes": ["read", "write"]},
                {"name": "canary", "token": READ_TOKEN, "scopes": ["read"]},
            ],
        },
        "store": {"data_dir": str(tmp_path / "data")},
        "streams": [stream("prod"), stream("cand")],
    }
    running = Daemon(parse_config(raw, base_dir=tmp_path))
    started = asyncio.Event()
    serving = asyncio.create_task(running.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        yield f"http://127.0.0.1:{running.port}"
    finally:
        running.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))


def canary(url: str, tmp_path: Path, duration: str) -> MonitorProcess:
    return MonitorProcess(
        "canary",
        *("--remote", url, "--stream-production", "prod", "--stream-candidate", "cand"),
        *("--duration", duration, "--interval", "0.2s"),
        *("--report-md", str(tmp_path / "canary.md")),
        *("--report-json", str(tmp_path / "canary.json")),
        *("--junit", str(tmp_path / "canary.xml")),
        env={"MONITOR_TOKEN": READ_TOKEN},
    )


async def feed(url: str, windows: list[tuple[str, int, int]]) -> None:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {WRITE_TOKEN}"}
    ) as http:
        for name, first, right in windows:
            posted = await http.post(f"/v1/streams/{name}/records", json=window(name, first, right))
            assert posted.status_code == 201, posted.text


async def finished(process: MonitorProcess) -> int:
    code = await asyncio.to_thread(process.proc.wait, deadline(60))
    await asyncio.to_thread(process.stop)
    return code


async def test_a_worse_candidate_is_rolled_back_before_the_duration_ends(
    daemon: str, tmp_path: Path
) -> None:
    # A window judged before the canary starts does not count: a bad old one here.
    await feed(daemon, [("prod", 0, 20)])
    async with httpx.AsyncClient(
        base_url=daemon, headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ) as http:

        async def judged() -> bool:
            reports = (await http.get("/v1/streams/prod/reports")).json()["reports"]
            return bool(reports and (reports[0]["performance"] or {}).get("metrics"))

        await until(judged, timeout=30, what="the old window to be scored")
    process = canary(daemon, tmp_path, duration="10m")
    try:
        await asyncio.to_thread(process.wait_for_line, r"monitor: canary .* s:", timeout=30)
        await feed(daemon, [("prod", WINDOW, 90), ("cand", 0, 60)])
        code = await finished(process)
    finally:
        process.stop()
    assert code == 1, process.output()
    report = json.loads((tmp_path / "canary.json").read_text())
    assert report["outcome"] == "rollback" and report["early"] and report["exit_code"] == 1
    last = report["looks"][-1]
    assert (last["correct_production"], last["n_production"]) == (90, WINDOW)
    assert (last["correct_candidate"], last["n_candidate"]) == (60, WINDOW)
    assert last["upper"] < 0 and last["p_value"] <= 0.05
    assert last["elapsed"] < 600  # long before the ten minutes
    assert "Roll back `cand`" in (tmp_path / "canary.md").read_text()
    junit = ET.parse(tmp_path / "canary.xml").getroot()
    assert junit.find("testsuite/testcase/failure") is not None
    assert "roll back" in process.output()


async def test_an_equal_candidate_is_promoted_when_the_duration_ends(
    daemon: str, tmp_path: Path
) -> None:
    # Long enough for the daemon (one look a second) to score both windows, even loaded.
    process = canary(daemon, tmp_path, duration=f"{round(deadline(3))}s")
    try:
        await asyncio.to_thread(process.wait_for_line, r"monitor: canary .* s:", timeout=30)
        await feed(daemon, [("prod", 0, 85), ("cand", 0, 85)])
        code = await finished(process)
    finally:
        process.stop()
    assert code == 0, process.output()
    report = json.loads((tmp_path / "canary.json").read_text())
    assert report["outcome"] == "promote" and not report["early"]
    last = report["looks"][-1]
    assert last["elapsed"] >= round(deadline(3)) and last["delta"] == 0 and last["p_value"] == 1
    junit = ET.parse(tmp_path / "canary.xml").getroot()
    assert junit.find("testsuite/testcase/failure") is None


async def test_a_missing_stream_is_an_infrastructure_failure(daemon: str, tmp_path: Path) -> None:
    process = MonitorProcess(
        "canary",
        *("--remote", daemon, "--stream-production", "prod", "--stream-candidate", "nope"),
        *("--duration", "5s", "--report-md", str(tmp_path / "canary.md")),
        env={"MONITOR_TOKEN": READ_TOKEN},
    )
    code = await finished(process)
    assert code == 3, process.output()
    assert "no such stream" in process.output()
    assert "not a verdict on the candidate" in (tmp_path / "canary.md").read_text()
