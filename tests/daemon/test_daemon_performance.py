"""Realized performance end to end: predictions are POSTed, their labels a little later;
the window's performance is provisional, then final; a degraded window is judged worse
than the reference and fires the ``performance`` rule; a late label re-opens a final
window. Seen through the API, /metrics and the alert store."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import AlertsConfig
from monitor.daemon.lifecycle import Daemon
from tests.servers import deadline, until
from tests.streams.conftest import WRITE_TOKEN, MakeConfig, stream_table

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
N = 200


def records(first: int, accuracy: float, seed: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """``N`` records with predictions, and their labels (``accuracy`` of them right)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, N)
    predicted = np.where(rng.random(N) < accuracy, truth, 1 - truth)
    region = rng.choice(["north", "south", "east"], N)
    rows = [
        {
            "ts": "2024-05-01T12:00:00Z",
            "id": f"r{first + i}",
            "alcohol": float(rng.normal(10, 1)),
            "region": str(region[i]),
            "pred": str(predicted[i]),
        }
        for i in range(N)
    ]
    labels = [{"id": f"r{first + i}", "y": str(truth[i])} for i in range(N)]
    return rows, labels


def reference(path: Path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 2000)
    predicted = np.where(rng.random(2000) < 0.9, truth, 1 - truth)
    table = {
        "ts": ["2024-04-01T00:00:00Z"] * 2000,
        "alcohol": rng.normal(10, 1, 2000),
        "region": rng.choice(["north", "south", "east"], 2000),
        "pred": [str(p) for p in predicted],
        "y": [str(t) for t in truth],
    }
    pa_csv.write_csv(pa.table(table), path)


async def test_delayed_labels_give_provisional_then_final_performance_and_a_judged_drop(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    reference(tmp_path / "reference.csv")
    table = stream_table(
        numerical=["alcohol"],
        categorical=["region"],
        segments=["region"],
        max_segments=2,
        fairness={"groups": "region"},
        prediction="pred",
        prediction_kind="categorical",
        label="y",
        window={"rows": N, "min_rows": 100},
        schedule={"every": "1s", "run_at_start": True},
        performance={"label_delay": "2s", "min_labels": 50, "metrics": ["accuracy"]},
    )
    config = make_stream_config(table)
    rule = {"name": "wine-accuracy", "kind": "performance", "stream": "wine"}
    # Any selection-rate gap between the regions is above this limit: it fires on window 1.
    parity = {"name": "wine-parity", "kind": "fairness", "stream": "wine", "value": 0.001}
    config = config.model_copy(
        update={
            "server": config.server.model_copy(update={"port": 0}),
            "alerts": AlertsConfig.model_validate({"rules": [rule, parity]}),
        }
    )
    daemon = Daemon(config)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        base = f"http://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient(base_url=base, headers=AUTH) as http:

            async def performance(key: str) -> dict[str, Any] | None:
                answer = await http.get("/v1/streams/wine/reports")
                for report in answer.json()["reports"]:
                    if report["window_key"] == key:
                        found: dict[str, Any] | None = report["performance"]
                        return found
                return None

            async def firing() -> bool:
                states = await asyncio.to_thread(daemon.store.alerts.alert_states)
                return any(s.rule == "wine-accuracy" and s.phase.value == "firing" for s in states)

            # Predictions first: judged for drift, performance provisional without labels.
            calm, calm_labels = records(0, 0.9, seed=1)
            posted = await http.post("/v1/streams/wine/records", json=calm)
            assert posted.status_code == 201, posted.text
            first = await until(lambda: performance("rows:0-200"), timeout=30, what="window 1")
            assert first["state"] == "provisional" and first["status"] == "insufficient_labels"
            assert first["n_labelled"] == 0 and first["metrics"] == []

            # The labels a little later: scored, judged against the reference, then final.
            sent = await http.post("/v1/streams/wine/labels", json=calm_labels)
            assert sent.status_code in (200, 201), sent.text

            async def final() -> dict[str, Any] | None:
                found = await performance("rows:0-200")
                return found if found and found["state"] == "final" else None

            done = await until(final, timeout=30, what="window 1 final")
            assert done["n_labelled"] == N and done["labelled_share"] == 1.0
            assert done["baseline"] == "reference" and not done["worse"]
            accuracy = next(m for m in done["metrics"] if m["metric"] == "accuracy")
            right = sum(r["pred"] == y["y"] for r, y in zip(calm, calm_labels, strict=True))
            assert accuracy["value"] == right / N
            assert accuracy["lower"] < accuracy["value"] < accuracy["upper"]
            assert not await firing()
            # Per segment (two kept, the third as __other__), the largest gap, fairness.
            groups = done["groups"]
            counts = Counter(r["region"] for r in calm).most_common()
            assert counts[1][1] > counts[2][1]  # the seeded data has a clear third
            kept = {counts[0][0], counts[1][0], "__other__"}
            assert {g["segment"] for g in groups["segments"]} == kept
            (gap,) = groups["gaps"]
            assert gap["metric"] == "accuracy" and gap["column"] == "region"
            assert gap["lower"] <= gap["gap"] <= gap["upper"]  # its bootstrap interval
            measures = {f["measure"] for f in groups["fairness"]}
            assert "demographic_parity_difference" in measures
            (dpd,) = [
                f for f in groups["fairness"] if f["measure"] == "demographic_parity_difference"
            ]
            assert dpd["value"] > parity["value"]

            # The fairness rule judged that window's demographic parity difference.
            async def parity_firing() -> dict[str, Any] | None:
                alerts = (await http.get("/v1/alerts")).json()["alerts"]
                found = [a for a in alerts if a["rule"] == "wine-parity"]
                return found[0] if found and found[0]["state"] == "firing" else None

            fired = await until(parity_firing, timeout=30, what="the fairness alert")
            assert fired["value"] == pytest.approx(dpd["value"], abs=1e-12)
            assert fired["threshold"] == parity["value"]
            assert fired["labels"]["stream"] == "wine"
            assert fired["labels"]["measure"] == "demographic_parity_difference"

            # A degraded model: its window is judged worse and the rule fires.
            bad, bad_labels = records(N, 0.6, seed=2)
            assert (await http.post("/v1/streams/wine/records", json=bad)).status_code == 201
            await until(lambda: performance(f"rows:{N}-{2 * N}"), timeout=30, what="window 2")
            await http.post("/v1/streams/wine/labels", json=bad_labels)

            async def worse() -> dict[str, Any] | None:
                found = await performance(f"rows:{N}-{2 * N}")
                return found if found and found["worse"] else None

            judged = await until(worse, timeout=30, what="window 2 judged worse")
            (test,) = [c for c in judged["comparison"] if c["metric"] == "accuracy"]
            assert test["test"] == "fisher-exact" and test["p_value"] < 0.05 and test["delta"] < 0
            await until(firing, timeout=30, what="the performance alert")

            # /metrics: the newest scored window's figures.
            text = (await http.get("/metrics")).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            values = {
                (s.labels["stream"], s.labels["metric"]): s.value
                for s in families["monitor_stream_performance"].samples
            }
            assert values[("wine", "accuracy")] == judged["metrics"][0]["value"]
            worse_flags = families["monitor_stream_performance_worse"].samples
            assert {(s.labels["metric"], s.value) for s in worse_flags} >= {("accuracy", 1.0)}
            fair = families["monitor_stream_fairness"].samples
            assert {s.labels["measure"] for s in fair} == measures
            gaps = families["monitor_stream_segment_gap"].samples
            assert {(s.labels["column"], s.labels["metric"]) for s in gaps} == {
                ("region", "accuracy")
            }
            (newest,) = judged["groups"]["gaps"]
            for bound in ("lower", "upper"):
                (sample,) = families[f"monitor_stream_segment_gap_{bound}"].samples
                assert sample.labels["column"] == "region" and sample.value == newest[bound]

            # A late label for window 1, final already: it is re-opened and re-scored.
            flipped = [{"id": "r0", "y": "1" if calm_labels[0]["y"] == "0" else "0"}]
            await http.post("/v1/streams/wine/labels", json=flipped)

            async def reopened() -> dict[str, Any] | None:
                found = await performance("rows:0-200")
                return found if found and found["reopened"] == 1 else None

            again = await until(reopened, timeout=30, what="window 1 re-opened")
            assert again["state"] in ("reopened", "final") and again["reopened_at"] is not None
            value = next(m["value"] for m in again["metrics"] if m["metric"] == "accuracy")
            assert abs(value - accuracy["value"]) == pytest.approx(1 / N)
            # Re-scoring an old window does not move the alert, which follows the newest.
            assert await firing()
    finally:
        daemon.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))
