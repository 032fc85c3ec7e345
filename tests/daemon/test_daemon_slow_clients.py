"""A slow-connection flood against ``monitor run`` at the common 1024 open-files limit:
scheduled runs keep succeeding, the log stays quiet, the API answers once it stops."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from monitor.records import RunStatus
from monitor.store import Store
from tests.daemon.test_daemon_process import demo_model, example_config
from tests.servers import MonitorProcess, deadline, wait_for

pytestmark = pytest.mark.integration

__all__ = ["demo_model"]  # the fixture, imported for this module's tests

# More connections than the daemon has descriptors: 1,100 against a limit of 1,024.
FLOOD = 1100


async def slow_client(
    port: int, stop: asyncio.Event, opened: list[int], interval: float = 1.0
) -> None:
    """One header byte every ``interval`` seconds, reconnecting whenever the daemon hangs up."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 4000
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        opened[0] += 1
        try:
            for byte in request:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval)
        except OSError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def finished_runs(data: Path) -> list[tuple[int, RunStatus]]:
    store = Store(f"sqlite:///{data / 'monitor.db'}")
    try:
        return [(r.id, r.status) for r in store.runs.list_runs() if r.finished_at is not None]
    finally:
        store.close()


async def test_a_slow_connection_flood_leaves_runs_and_health_alone(
    tmp_path: Path, demo_model: str
) -> None:
    config = example_config(tmp_path)
    text = config.read_text()
    for old, new in [
        ('shutdown_grace = "5s"', 'shutdown_grace = "5s"\nheader_timeout = "2s"'),
        ('every = "30s"', 'every = "2s"'),
        ('jitter = "2s"', 'jitter = "0s"'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    daemon, api = start_daemon_limited(config, demo_model)
    data = tmp_path / "data"
    port = int(api.rsplit(":", 1)[1])
    try:
        wait_for(lambda: finished_runs(data), timeout=60, what="a first run before the flood")
        before = len(finished_runs(data))
        lines_before = len(daemon.output().splitlines())
        stop = asyncio.Event()
        opened = [0]
        started = time.monotonic()
        clients = [asyncio.create_task(slow_client(port, stop, opened)) for _ in range(FLOOD)]
        # The flood lasts until three more scheduled runs have finished under it.
        end = time.monotonic() + deadline(90)
        while len(finished_runs(data)) < before + 3 and time.monotonic() < end:
            await asyncio.sleep(0.5)
        under_flood = finished_runs(data)[before:]
        stop.set()
        await asyncio.gather(*clients)
        assert len(under_flood) >= 3, "scheduled runs stopped during the flood"
        assert {status for _, status in under_flood} == {RunStatus.SUCCEEDED}
        assert opened[0] >= FLOOD  # every client got a connection, most more than one

        async def healthy() -> bool:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{api}/healthz")).status_code == 200

        end = time.monotonic() + deadline(10)
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if await healthy():
                    break
            assert time.monotonic() < end, "/healthz did not answer after the flood"
            await asyncio.sleep(0.1)
        # The guard's refusals and asyncio's accept errors are logged once a minute, not
        # once a connection (1,100 clients opened thousands): a line or two a minute.
        flood_lines = daemon.output().splitlines()[lines_before:]
        guard_lines = [line for line in flood_lines if "monitor.daemon.guard" in line]
        minutes = (time.monotonic() - started) // 60 + 1
        assert 1 <= len(guard_lines) <= 2 * minutes, guard_lines
        assert "closed by the guard" in guard_lines[0]
        others = [line for line in flood_lines if line not in guard_lines]
        assert all(" INFO " in line for line in others), others
    finally:
        daemon.stop()


def start_daemon_limited(config: Path, model_url: str) -> tuple[MonitorProcess, str]:
    """``start_daemon`` with the open-files limit at 1024, soft and hard, as on many hosts."""
    daemon = MonitorProcess(
        "run", "-c", str(config), env={"MONITOR_DEMO_MODEL_URL": model_url}, open_files=1024
    )
    port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
    return daemon, f"http://127.0.0.1:{port}"
