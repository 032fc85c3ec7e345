"""Every request the transport sends reaches the observer with its outcome, retries
included, and the daemon's instruments count them on their own registry."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.adapters import OUTCOMES, RequestOutcome, build_adapter
from monitor.config import SuiteConfig
from monitor.metrics.instruments import RequestMetrics
from monitor.records import RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from tests.adapters.endpoints import Endpoint
from tests.adapters.models import case, model_for
from tests.servers import ROOT

# Against real servers: once per HTTP client under the transport.
pytestmark = pytest.mark.usefixtures("http_client")


class Recorder:
    """An observer that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, RequestOutcome, float]] = []

    def observe_request(self, model: str, outcome: RequestOutcome, seconds: float) -> None:
        self.calls.append((model, outcome, seconds))

    def outcomes(self) -> Counter[str]:
        return Counter(outcome for _, outcome, _ in self.calls)


def suite_of(tmp_path: Path, n: int) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    rows = [{"id": f"c{i}", "x": float(i), "label": "pos"} for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "max_error_rate": 1.0,
        }
    )


async def test_a_run_counts_every_request_by_outcome_on_the_registry(
    endpoint: Endpoint, store: Store, tmp_path: Path
) -> None:
    # One case at a time, so the script meets the requests in order:
    # c0: 500 (retried), 429 (retried), truncated JSON (given up: bad_response);
    # c1: 400 (not retried); c2: too slow (retried), then answered; c3: JSON without
    # a prediction: an ok request, a failed case.
    endpoint.script("500", "429:0", "truncated", "400", "slow:1", "schema")
    model = model_for("http", endpoint.url, timeout="300ms", concurrency=1)
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry, models=["m", "idle"])
    runner = Runner(store, observer=metrics)
    try:
        run = await runner.run(suite_of(tmp_path, 4), model)
    finally:
        await runner.aclose()
    assert run.status is RunStatus.SUCCEEDED and run.n_errors == 3

    def value(name: str, **labels: str) -> float:
        sample = registry.get_sample_value(name, labels)
        assert sample is not None, (name, labels)
        return sample

    counted = {o: value("monitor_model_requests_total", model="m", outcome=o) for o in OUTCOMES}
    assert counted == {
        "ok": 2,
        "rate_limited": 1,
        "http_status": 2,
        "timeout": 1,
        "connection": 0,
        "bad_response": 1,
    }
    assert sum(counted.values()) == len(endpoint.requests) == 7
    assert value("monitor_model_request_duration_seconds_count", model="m") == 7
    # The timeout waited its 300 ms: it sits above the 250 ms bucket.
    assert value("monitor_model_request_duration_seconds_bucket", model="m", le="0.25") <= 6
    assert value("monitor_model_request_duration_seconds_sum", model="m") >= 0.3
    # A configured model that sent nothing is exported at 0, every outcome.
    assert value("monitor_model_requests_total", model="idle", outcome="timeout") == 0
    assert value("monitor_model_request_duration_seconds_count", model="idle") == 0


@pytest.mark.parametrize("adapter", ["http", "openai", "mlflow", "kserve-v2"])
async def test_every_adapter_reports_its_requests(endpoint: Endpoint, adapter: str) -> None:
    endpoint.script("500")
    recorder = Recorder()
    model = build_adapter(model_for(adapter, endpoint.url), observer=recorder)
    try:
        await model.predict(case(0, 1.0))
    finally:
        await model.aclose()
    assert [(m, o) for m, o, _ in recorder.calls] == [("m", "http_status"), ("m", "ok")]
    assert all(seconds >= 0 for _, _, seconds in recorder.calls)


async def test_a_refused_connection_is_reported_once_per_try() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: refused
    recorder = Recorder()
    config = model_for("http", f"http://127.0.0.1:{port}", retry={"attempts": 1, "backoff": "1ms"})
    model = build_adapter(config, observer=recorder)
    try:
        with pytest.raises(Exception, match="ConnectError"):
            await model.predict(case(0, 1.0))
    finally:
        await model.aclose()
    assert recorder.outcomes() == {"connection": 2}


async def test_a_request_cancelled_in_flight_is_not_reported(endpoint: Endpoint) -> None:
    endpoint.script("slow:1")
    recorder = Recorder()
    model = build_adapter(model_for("http", endpoint.url, timeout="5s"), observer=recorder)
    try:
        asking = asyncio.create_task(model.predict(case(0, 1.0)))
        async with asyncio.timeout(10):
            while not endpoint.requests:  # until the request has reached the server
                await asyncio.sleep(0.01)
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
    finally:
        await model.aclose()
    assert recorder.calls == []


def test_the_adapters_import_no_metrics_library() -> None:
    code = (
        "import sys, monitor.adapters, monitor.runs.runner;"
        " print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
