"""The daemon end to end with a real loopback model: the first scheduled run becomes the
baseline (``baseline = "auto"``), later runs are judged against it, a degraded model's
verdict is ``regressed``, served by the API, exported to Prometheus and fires the
regression alert."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import parse_config
from monitor.daemon.lifecycle import Daemon
from tests.servers import deadline, serve_in_thread, until

CASES = 300


class Model:
    """Answers the parity of ``n``; when degraded, every fifth even case is wrong."""

    degraded = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/predict")
        async def predict(body: dict[str, Any]) -> dict[str, Any]:
            n = int(body["n"])
            label = "even" if n % 2 == 0 else "odd"
            if self.degraded and n % 10 == 0:
                label = "odd"
            return {"label": label}

        return app


async def test_runs_are_judged_against_the_auto_baseline_and_a_regression_fires(
    tmp_path: Path,
) -> None:
    dataset = tmp_path / "parity.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"n{n:03d}", "n": n, "label": "even" if n % 2 == 0 else "odd"}) + "\n"
            for n in range(CASES)
        )
    )
    model = Model()
    with serve_in_thread(model.app()) as model_url:
        config = parse_config(
            {
                "server": {"port": 0},
                "store": {"data_dir": str(tmp_path / "data")},
                "models": [
                    {
                        "name": "parity",
                        "adapter": "http",
                        "url": f"{model_url}/predict",
                        "body": {"n": "{{n}}"},
                        "prediction": "label",
                    }
                ],
                "suites": [
                    {
                        "name": "numbers",
                        "dataset": str(dataset),
                        "task": "classification",
                        "expected": "label",
                        "inputs": ["n"],
                        "metrics": ["accuracy"],
                        "models": ["parity"],
                        "baseline": "auto",
                        "schedule": {"every": "1s", "run_at_start": True},
                    }
                ],
                "alerts": {"rules": [{"name": "parity-regressed", "kind": "regression", "for": 1}]},
            },
            base_dir=tmp_path,
        )
        daemon = Daemon(config)
        started = asyncio.Event()
        serving = asyncio.create_task(daemon.serve(started=started))
        try:
            await asyncio.wait_for(started.wait(), timeout=deadline(30))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as api:

                async def active_baseline() -> Any:
                    found = (await api.get("/v1/baselines")).json()
                    return next((b for b in found if b["active"]), None)

                baseline = await until(active_baseline, timeout=30, what="the auto baseline")
                assert baseline["promoted_by"] == "auto" and baseline["suite"] == "numbers"

                async def verdict(outcome: str) -> Any:
                    page = (await api.get("/v1/verdicts", params={"suite": "numbers"})).json()
                    return next((v for v in page["verdicts"] if v["outcome"] == outcome), None)

                passed = await until(lambda: verdict("pass"), timeout=30, what="a pass verdict")
                assert passed["baseline_run_id"] == baseline["run_id"]
                assert passed["metrics"][0]["n"] == CASES

                model.degraded = True
                regressed = await until(
                    lambda: verdict("regressed"), timeout=30, what="a regressed verdict"
                )
                (row,) = regressed["metrics"]
                assert (row["degraded"], row["improved"]) == (CASES // 10, 0)
                assert row["delta"] == -0.1 and row["method"] == "mcnemar-exact"
                assert {c["change"] for c in regressed["changes"]} == {"degraded"}
                by_run = (await api.get(f"/v1/runs/{regressed['run_id']}/verdict")).json()
                assert by_run["id"] == regressed["id"]

                async def firing() -> Any:
                    alerts = (await api.get("/v1/alerts")).json()
                    return next(
                        (
                            a
                            for a in alerts["alerts"]
                            if a["rule"] == "parity-regressed" and a["state"] == "firing"
                        ),
                        None,
                    )

                alert = await until(firing, timeout=30, what="the regression alert")
                assert "accuracy" in alert["summary"]

                text = (await api.get("/metrics")).text
                samples = {
                    (s.name, s.labels.get("outcome", s.labels.get("metric"))): s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name.startswith(("monitor_verdict", "monitor_baseline"))
                }
                assert samples["monitor_baseline_score", "accuracy"] == 1.0
                # Runs keep coming every second; the latest verdict is regressed from now on.
                assert samples["monitor_verdict_outcome", "regressed"] == 1.0
                assert samples["monitor_verdict_outcome", "pass"] == 0.0
                assert samples["monitor_verdict_metric_regressed", "accuracy"] == 1.0
        finally:
            daemon.request_stop()
            await asyncio.wait_for(serving, timeout=deadline(30))
