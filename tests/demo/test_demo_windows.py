"""``monitor demo`` judges every window of its traffic while its suite runs.

The demo's traffic fills a 200-row window about every 5 s and the stream is judged every
5 s; with the suite also running every 5 s, every drift tick coincides with a run. Judging
only the latest window, ticks that found two new windows (traffic and tick drifting by a
few tens of milliseconds) skipped one: ``rows:1000-1200`` and ``rows:2200-2400`` in 75 s.
The deterministic version of that cause is in tests/daemon/test_daemon_drift.py (ten
windows in one tick)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import MonitorProcess, deadline, wait_for

pytestmark = pytest.mark.integration

WINDOWS = 8


def test_demo_judges_every_window_while_its_suite_runs(tmp_path: Path) -> None:
    demo = MonitorProcess(
        "demo", "--port", "0", "--data-dir", str(tmp_path / "data"), "--every", "5s"
    )
    try:
        api = demo.wait_for_line(r"drift:\s+(http://\S+)/v1/streams/wine-traffic/reports").group(1)

        def judged() -> list[str] | None:
            answer = httpx.get(f"{api}/v1/streams/wine-traffic/reports", params={"limit": 100})
            found: list[dict[str, Any]] = answer.json()["reports"]
            return [r["window_key"] for r in reversed(found)] if len(found) >= WINDOWS else None

        keys = wait_for(judged, timeout=90, what=f"{WINDOWS} windows of demo traffic")
        assert keys == [f"rows:{k * 200}-{k * 200 + 200}" for k in range(len(keys))]
        runs = httpx.get(f"{api}/v1/runs", params={"limit": 100}).json()["runs"]
        assert len(runs) >= WINDOWS - 2  # the suite ran all along
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=deadline(10)) == 0
    finally:
        demo.stop()
    # (A run cut short by the SIGINT may log a traceback of its own: not the streams'.)
    output = demo.output()
    assert "judging its windows failed" not in output and "not judged" not in output
