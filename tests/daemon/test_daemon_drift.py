"""The daemon end to end: records POSTed to its API drift, a scheduled job judges the
window, the report is stored, served, exported and handed to the drift hooks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import AlertsConfig
from monitor.daemon.lifecycle import Daemon
from monitor.records import DriftReport
from tests.servers import deadline, until
from tests.streams.conftest import WRITE_TOKEN, MakeConfig, stream_table

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}


def rows(n: int, *, shift: float, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    regions = ["north", "south", "east"]
    p = [0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7]
    return [
        {
            "ts": f"2024-05-01T12:{i % 60:02d}:00Z",
            "id": f"r{seed}-{i}",
            "alcohol": float(rng.normal(10 + shift, 1)),
            "acidity": float(rng.lognormal(0, 0.5)),
            "region": str(rng.choice(regions, p=p)),
        }
        for i in range(n)
    ]


async def test_ingested_drift_is_reported(make_stream_config: MakeConfig, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 3000,
        "alcohol": rng.normal(10, 1, 3000),
        "acidity": rng.lognormal(0, 0.5, 3000),
        "region": rng.choice(["north", "south", "east"], 3000, p=[0.5, 0.3, 0.2]),
    }
    table = stream_table(
        window={"rows": 500, "min_rows": 100},
        schedule={"every": "1s", "run_at_start": True},
    )
    config = make_stream_config(table)
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    rule = {"name": "wine-drift", "kind": "drift", "stream": "wine", "severity": "warning"}
    config = config.model_copy(
        update={
            "server": config.server.model_copy(update={"port": 0}),
            "alerts": AlertsConfig.model_validate({"rules": [rule]}),
        }
    )
    daemon = Daemon(config)
    seen: list[DriftReport] = []
    daemon.on_drift_report.append(seen.append)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        # The write token reads too: with tokens configured every /v1 route needs one.
        base = f"http://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            url = "/v1/streams/wine/records"
            calm = await http.post(url, json=rows(500, shift=0, seed=2), headers=AUTH)
            assert calm.status_code == 201, calm.text

            async def reports() -> list[dict[str, Any]]:
                answer = await http.get("/v1/streams/wine/reports")
                found: list[dict[str, Any]] = answer.json()["reports"]
                return found

            first = (await until(reports, timeout=30, what="the first drift report"))[0]
            assert first["window_key"] == "rows:0-500" and not first["dataset_drifted"]
            drifted = await http.post(url, json=rows(500, shift=1.5, seed=3), headers=AUTH)
            assert drifted.status_code == 201

            async def second() -> list[dict[str, Any]]:
                return [r for r in await reports() if r["window_key"] == "rows:500-1000"]

            (latest,) = await until(second, timeout=30, what="the second drift report")
            assert latest["dataset_drifted"] and {"alcohol", "region"} <= set(
                latest["drifted_columns"]
            )

            # The drift report reaches the alert rules: the drift alert fires.
            async def firing() -> list[str]:
                states = await asyncio.to_thread(daemon.store.alerts.alert_states)
                return [s.rule for s in states if s.phase.value == "firing"]

            assert await until(firing, timeout=30, what="the drift alert") == ["wine-drift"]
            detail = (await http.get(f"/v1/drift/{latest['id']}")).json()
            assert detail == latest
            metrics = (await http.get("/metrics")).text
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        ingested = families["monitor_stream_rows_ingested"].samples
        assert [(s.labels, s.value) for s in ingested if s.name.endswith("_total")] == [
            ({"stream": "wine"}, 1000.0)
        ]
        dataset = families["monitor_drift_dataset_drifted"].samples
        assert [(s.labels["stream"], s.value) for s in dataset] == [("wine", 1.0)]
        p_values = {
            (s.labels["column"], s.labels["method"]): s.value
            for s in families["monitor_drift_p_value"].samples
        }
        assert p_values[("alcohol", "ks")] < 1e-6 and ("region", "chi2") in p_values
        distances = {s.labels["method"] for s in families["monitor_drift_distance"].samples}
        assert "psi" in distances and "ks" not in distances
        assert [r.window_key for r in seen] == ["rows:0-500", "rows:500-1000"]
    finally:
        daemon.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))


async def test_windows_posted_between_two_evaluations_are_each_judged_once_in_order(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    """Ten windows land between two ticks (a producer faster than the schedule, the demo's
    skip): ten reports, oldest first, each handed to the hooks once, the gauges on the
    newest; a stream whose backfill is 3 judges the newest three and counts seven."""
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 3000,
        "alcohol": rng.normal(10, 1, 3000),
        "acidity": rng.lognormal(0, 0.5, 3000),
        "region": rng.choice(["north", "south", "east"], 3000, p=[0.5, 0.3, 0.2]),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    schedule = {"every": "1s", "run_at_start": True}
    config = make_stream_config(
        stream_table(window={"rows": 200, "min_rows": 100}, schedule=schedule),
        stream_table(name="fast", window={"rows": 200, "backfill": 3}, schedule=schedule),
    )
    config = config.model_copy(update={"server": config.server.model_copy(update={"port": 0})})
    daemon = Daemon(config)
    seen: list[DriftReport] = []
    daemon.on_drift_report.append(seen.append)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        base = f"http://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:
            # One batch of ten windows, the last one drifted.
            batch = rows(1800, shift=0, seed=2) + rows(200, shift=1.5, seed=3)
            for stream in ("wine", "fast"):
                answer = await http.post(f"/v1/streams/{stream}/records", json=batch)
                assert answer.status_code == 201, answer.text

            def judged(stream: str, count: int) -> Callable[[], Awaitable[list[str] | None]]:
                async def check() -> list[str] | None:
                    found = [r.window_key for r in seen if r.stream == stream]
                    return found if len(found) >= count else None

                return check

            expected = [f"rows:{k * 200}-{k * 200 + 200}" for k in range(10)]
            assert await until(judged("wine", 10), timeout=30, what="ten reports") == expected
            assert await until(judged("fast", 3), timeout=30, what="three") == expected[7:]
            metrics = (await http.get("/metrics")).text
            # One more window: judged once, after the ten (no window judged again).
            answer = await http.post("/v1/streams/wine/records", json=rows(200, shift=0, seed=4))
            assert answer.status_code == 201
            eleven = await until(judged("wine", 11), timeout=30, what="the eleventh report")
            assert eleven == [*expected, "rows:2000-2200"]
        families = {f.name: f for f in text_string_to_metric_families(metrics)}
        drifted = {
            s.labels["stream"]: s.value for s in families["monitor_drift_dataset_drifted"].samples
        }
        assert drifted == {"wine": 1.0, "fast": 1.0}  # the newest window drifted
        skipped = {
            s.labels["stream"]: s.value
            for s in families["monitor_stream_windows_skipped"].samples
            if s.name.endswith("_total")
        }
        assert skipped == {"wine": 0.0, "fast": 7.0}
        reports = await asyncio.to_thread(
            daemon.store.streams.list_drift_reports, "wine", limit=100
        )
        assert [r.window_key for r in reversed(reports)] == eleven
    finally:
        daemon.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))
