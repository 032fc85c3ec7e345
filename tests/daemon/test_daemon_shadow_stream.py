"""Two streams joined by record id, as users run it: ``monitor run`` in a subprocess,
production's records and the shadow model's records POSTed over HTTP to two streams.
The shadow's records arrive after production's window was judged; the window joins them
within its lag, and /metrics reports the agreement and the disagreement share with its
Wilson interval (as statsmodels computes it) through the one-stream form's metrics, and
the re-joined window fires the ``divergence`` rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from prometheus_client.parser import text_string_to_metric_families
from statsmodels.stats.proportion import proportion_confint

from tests.servers import MonitorProcess, wait_for

pytestmark = pytest.mark.integration

TOKEN = "shadow-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
N = 100


def write_config(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 500,
        "alcohol": rng.normal(10, 1, 500),
        "pred": [f"class_{k}" for k in rng.integers(0, 3, 500)],
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    stream = f"""
timestamp = "ts"
record_id = "id"
numerical = ["alcohol"]
prediction = "pred"
prediction_kind = "categorical"
reference = {{ file = "{tmp_path / "reference.csv"}" }}
window = {{ rows = {N}, min_rows = 50 }}
schedule = {{ every = "1s", run_at_start = true }}
"""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
tokens = [{{ name = "ci", token = "${{SHADOW_TOKEN}}", scopes = ["read", "write"] }}]

[store]
data_dir = "{tmp_path / "data"}"

[[alerts.rules]]
name = "shadow-diverges"
kind = "divergence"
stream = "churn"
value = 0.05

[[streams]]
name = "churn"
shadow = {{ stream = "churn-shadow", max_lag = "1h" }}
{stream}
[[streams]]
name = "churn-shadow"
{stream}"""
    )
    return path


def records(predictions: list[str], seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "ts": "2024-05-01T12:00:00Z",
            "id": f"r{i}",
            "alcohol": float(rng.normal(10, 1)),
            "pred": p,
        }
        for i, p in enumerate(predictions)
    ]


def shadow_of(api: str) -> dict[str, Any] | None:
    answer = httpx.get(f"{api}/v1/streams/churn/reports", headers=AUTH)
    found = answer.json()["reports"]
    return found[0]["shadow"] if found else None


def metrics(api: str) -> dict[str, Any]:
    text = httpx.get(f"{api}/metrics").text
    return {f.name: f for f in text_string_to_metric_families(text)}


def firing(api: str) -> bool:
    alerts = httpx.get(f"{api}/v1/alerts", headers=AUTH).json()["alerts"]
    return any(a["rule"] == "shadow-diverges" and a["state"] == "firing" for a in alerts)


def test_a_shadow_stream_posted_over_http_reports_agreement_in_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    predicted = [f"class_{k}" for k in rng.integers(0, 3, N)]
    shadowed = [p if rng.random() > 0.25 else "class_9" for p in predicted]
    differ = sum(p != s for p, s in zip(predicted, shadowed, strict=True))
    daemon = MonitorProcess("run", "-c", str(write_config(tmp_path)), env={"SHADOW_TOKEN": TOKEN})
    try:
        port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        api = f"http://127.0.0.1:{port}"
        sent = httpx.post(
            f"{api}/v1/streams/churn/records", json=records(predicted, 3), headers=AUTH
        )
        assert sent.status_code == 201, sent.text
        # Judged before the shadow model answered: no pairs yet, the join still open.
        first = wait_for(lambda: shadow_of(api), timeout=30, what="production's window")
        assert (first["n_pairs"], first["status"], first["state"]) == (
            0,
            "insufficient_data",
            "provisional",
        )

        sent = httpx.post(
            f"{api}/v1/streams/churn-shadow/records", json=records(shadowed, 4), headers=AUTH
        )
        assert sent.status_code == 201, sent.text
        joined = wait_for(
            lambda: (s := shadow_of(api)) and s["n_pairs"] == N and s,
            timeout=30,
            what="the late shadow records joined",
        )
        assert joined["stream"] == "churn-shadow" and joined["agreement"] == 1 - differ / N

        families = metrics(api)
        (pairs,) = families["monitor_stream_shadow_pairs"].samples
        assert pairs.labels == {"stream": "churn"} and pairs.value == N
        (agreement,) = families["monitor_stream_shadow_agreement"].samples
        assert agreement.value == 1 - differ / N
        (share,) = families["monitor_stream_shadow_divergence"].samples
        assert share.labels == {"stream": "churn", "measure": "disagreement_share"}
        assert share.value == differ / N
        low, high = proportion_confint(differ, N, alpha=0.05, method="wilson")
        (lower,) = families["monitor_stream_shadow_divergence_lower"].samples
        (upper,) = families["monitor_stream_shadow_divergence_upper"].samples
        assert abs(lower.value - low) < 1e-9 and abs(upper.value - high) < 1e-9
        # The re-joined window went to the divergence rules: its interval is above 5%.
        assert low > 0.05
        wait_for(lambda: firing(api), timeout=30, what="the divergence alert to fire")
    finally:
        daemon.stop()
