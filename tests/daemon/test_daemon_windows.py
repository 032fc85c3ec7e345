"""The window queue in one daemon on SQLite: windows a daemon killed mid-judging left
leased are queued again at the next start (the file lock proves their holder dead); a
window whose report was stored before the crash is announced from it, not judged again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from monitor.daemon.lifecycle import Daemon
from monitor.records import DriftReport
from monitor.store import Store
from monitor.store.window_leases import DueWindow
from monitor.streams.batch import encode, parse_batch
from monitor.streams.evaluate import StreamEvaluator
from monitor.streams.windows import row_window
from tests.servers import deadline, until
from tests.streams.conftest import MakeConfig, stream_table


def write_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 2000,
        "alcohol": rng.normal(10, 1, 2000),
        "acidity": rng.lognormal(0, 0.5, 2000),
        "region": rng.choice(["north", "south", "east"], 2000, p=[0.5, 0.3, 0.2]),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")


def records(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    rows = [
        {
            "ts": "2024-05-01T12:00:00Z",
            "id": f"r{seed}-{i}",
            "alcohol": float(rng.normal(10, 1)),
            "acidity": float(rng.lognormal(0, 0.5)),
            "region": str(rng.choice(["north", "south", "east"])),
        }
        for i in range(n)
    ]
    return json.dumps(rows).encode()


async def test_a_dead_daemons_windows_are_judged_once_after_a_restart(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_stream_config(
        stream_table(window={"rows": 100, "min_rows": 50}, schedule={"every": "1s"})
    )
    config = config.model_copy(update={"server": config.server.model_copy(update={"port": 0})})
    write_reference(tmp_path)
    stream = config.streams[0]
    # What a daemon killed mid-window leaves: window 0 judged and stored but its row not
    # deleted (it died before announcing it), window 1 leased, window 2 queued.
    with Store(config.store.effective_url) as store:
        store.upgrade()
        batch = parse_batch(stream, records(300, 1), "json")
        store.streams.append_batch(
            "wine",
            received_at=datetime.now(UTC),
            first_ts=batch.first_ts,
            last_ts=batch.last_ts,
            n_rows=batch.n_rows,
            payload=encode(batch.table),
        )
        stored = StreamEvaluator(stream, store).evaluate(row_window(0, rows=100))
        assert stored is not None
        due = [
            DueWindow("wine", w.key, w.first_row or 0, first_row=w.first_row, end_row=w.end_row)
            for w in (row_window(i, rows=100) for i in range(3))
        ]
        store.windows.enqueue(due, at=datetime.now(UTC))
        (held,) = store.windows.claim(
            owner="dead:1", at=datetime.now(UTC), limit=1, streams=["wine"]
        )
        assert held.window.key == "rows:0-100"

    daemon = Daemon(config)
    seen: list[DriftReport] = []
    daemon.on_drift_report.append(seen.append)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:

        async def drained() -> bool:
            counts = await asyncio.to_thread(daemon.store.windows.counts)
            return not counts and len(seen) >= 3

        await until(drained, timeout=30, what="the queued windows judged")
        reports = await asyncio.to_thread(daemon.store.streams.list_drift_reports, "wine")
    finally:
        daemon.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))
    assert [r.window_key for r in seen] == ["rows:0-100", "rows:100-200", "rows:200-300"]
    assert seen[0].id == stored.id  # announced from the stored report, not judged again
    assert sorted(r.window_key for r in reports) == [r.window_key for r in seen]
