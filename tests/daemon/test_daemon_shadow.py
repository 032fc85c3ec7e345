"""Shadow comparison end to end: records carrying production's and a shadow model's
prediction are POSTed over HTTP; each window's report carries the agreement and the
disagreement share with its Wilson interval (as statsmodels computes it); /metrics
exports it; a window whose interval lies beyond the limit fires the ``divergence`` rule
and a window that agrees again resolves it."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from prometheus_client.parser import text_string_to_metric_families
from statsmodels.stats.proportion import proportion_confint

from monitor.config import AlertsConfig
from monitor.daemon.lifecycle import Daemon
from tests.servers import deadline, until
from tests.streams.conftest import WRITE_TOKEN, MakeConfig, stream_table

AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
N = 200


def records(first: int, disagree: float, seed: int) -> list[dict[str, Any]]:
    """``N`` records whose shadow prediction differs from production's in ``disagree``
    of them (a seeded draw)."""
    rng = np.random.default_rng(seed)
    predicted = rng.integers(0, 3, N)
    flip = rng.random(N) < disagree
    shadow = np.where(flip, (predicted + 1) % 3, predicted)
    return [
        {
            "ts": "2024-05-01T12:00:00Z",
            "id": f"r{first + i}",
            "alcohol": float(rng.normal(10, 1)),
            "pred": f"class_{predicted[i]}",
            "shadow": f"class_{shadow[i]}",
        }
        for i in range(N)
    ]


async def test_windows_report_shadow_divergence_and_the_rule_judges_its_interval(
    make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 500,
        "alcohol": rng.normal(10, 1, 500),
        "pred": [f"class_{k}" for k in rng.integers(0, 3, 500)],
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    table = stream_table(
        numerical=["alcohol"],
        categorical=[],
        prediction="pred",
        prediction_kind="categorical",
        shadow_prediction="shadow",
        window={"rows": N, "min_rows": 100},
        schedule={"every": "1s", "run_at_start": True},
    )
    config = make_stream_config(table)
    rule = {"name": "shadow-diverges", "kind": "divergence", "stream": "wine", "value": 0.1}
    config = config.model_copy(
        update={
            "server": config.server.model_copy(update={"port": 0}),
            "alerts": AlertsConfig.model_validate({"rules": [rule]}),
        }
    )
    daemon = Daemon(config)
    started = asyncio.Event()
    serving = asyncio.create_task(daemon.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{daemon.port}", headers=AUTH
        ) as http:

            async def shadow(key: str) -> dict[str, Any] | None:
                answer = await http.get("/v1/streams/wine/reports")
                for report in answer.json()["reports"]:
                    if report["window_key"] == key:
                        found: dict[str, Any] | None = report["shadow"]
                        return found
                return None

            async def phase() -> str | None:
                states = await asyncio.to_thread(daemon.store.alerts.alert_states)
                return next((s.phase.value for s in states if s.rule == "shadow-diverges"), None)

            # A shadow model that diverges: 30% disagreement, interval well above 10%.
            apart = records(0, 0.3, seed=1)
            assert (await http.post("/v1/streams/wine/records", json=apart)).status_code == 201
            first = await until(lambda: shadow("rows:0-200"), timeout=30, what="window 1")
            differ = sum(r["pred"] != r["shadow"] for r in apart)
            assert first["status"] == "ok" and first["n_pairs"] == N
            assert first["agreement"] == 1 - differ / N
            d = first["divergence"]
            low, high = proportion_confint(differ, N, alpha=0.05, method="wilson")
            assert d["measure"] == "disagreement_share" and d["interval"] == "wilson"
            assert d["value"] == differ / N
            assert abs(d["lower"] - low) < 1e-9 and abs(d["upper"] - high) < 1e-9
            assert d["lower"] > 0.1
            await until(
                lambda: _is(phase, "firing"), timeout=30, what="the divergence alert to fire"
            )

            # /metrics: the stream only as label, plus the measure.
            text = (await http.get("/metrics")).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            (sample,) = families["monitor_stream_shadow_divergence"].samples
            assert sample.labels == {"stream": "wine", "measure": "disagreement_share"}
            assert sample.value == d["value"]
            (lower,) = families["monitor_stream_shadow_divergence_lower"].samples
            assert lower.value == d["lower"]
            (agreement,) = families["monitor_stream_shadow_agreement"].samples
            assert agreement.labels == {"stream": "wine"} and agreement.value == first["agreement"]

            # The shadow agrees again: the alert resolves.
            close = records(N, 0.0, seed=2)
            assert (await http.post("/v1/streams/wine/records", json=close)).status_code == 201
            second = await until(lambda: shadow(f"rows:{N}-{2 * N}"), timeout=30, what="window 2")
            assert second["agreement"] == 1.0 and second["divergence"]["value"] == 0.0
            await until(lambda: _is(phase, "resolved"), timeout=30, what="the alert to resolve")
    finally:
        daemon.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))


async def _is(phase: Any, wanted: str) -> bool:
    return bool(await phase() == wanted)
