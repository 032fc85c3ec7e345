"""The shipped ``MonitorRunsFailing`` rule against real processes: a fresh daemon whose
model refuses connections, a real Prometheus scraping it every second with the shipped
rules. The failed-runs counter is scraped at 0 before the first run, so the first failure
counts: two failures do not fire, the third does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.metrics.test_prometheus import query, start_prometheus, tool
from tests.servers import ROOT, MonitorProcess, deadline, wait_for

pytestmark = pytest.mark.integration

TOKEN = "runs-failing-write-token-0123456789"
RUN = {"benchmarkId": "qa", "models": [{"id": "prod"}]}
FAILED = 'monitor_runs_finished_total{suite="qa", model="prod", status="failed"}'
FIRING = 'ALERTS{alertname="MonitorRunsFailing", alertstate="firing", suite="qa", model="prod"}'


def write_config(tmp_path: Path) -> Path:
    """One suite on one model at a closed port: every case fails, so every run fails."""
    (tmp_path / "qa.jsonl").write_text(
        "".join(json.dumps({"id": i, "x": i, "expected": "a"}) + "\n" for i in range(2))
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
[[server.tokens]]
name = "ci"
token = "${{API_TOKEN}}"
scopes = ["write"]
[store]
data_dir = "{tmp_path / "data"}"
[[models]]
name = "prod"
adapter = "http"
url = "http://127.0.0.1:1/predict"
retry = {{ attempts = 0 }}
[[suites]]
name = "qa"
dataset = "qa.jsonl"
task = "classification"
metrics = ["accuracy"]
models = ["prod"]
"""
    )
    return path


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    process = MonitorProcess("run", "-c", str(write_config(tmp_path)), env={"API_TOKEN": TOKEN})
    try:
        port = process.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture
def prometheus(daemon: str, tmp_path: Path) -> Iterator[str]:
    binary = tool("prometheus")
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "monitor.yml")],
        "scrape_configs": [
            {
                "job_name": "monitor",
                "static_configs": [{"targets": [daemon.removeprefix("http://")]}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    process, url = start_prometheus(binary, workdir)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=deadline(30))


def fail_a_run(http: httpx.Client, prometheus: str, failures: int) -> None:
    """Ask for a run, wait for it to fail, then for Prometheus to scrape the new count."""
    request_id = http.post("/v1/runs", json=RUN).json()["runId"]
    wait_for(
        lambda: http.get(f"/v1/runs/{request_id}").json()["status"] == "failed",
        timeout=30,
        what=f"run {failures} to fail",
    )
    wait_for(
        lambda: query(prometheus, f"{FAILED} == {failures}"),
        timeout=30,
        what=f"Prometheus to scrape {failures} failed run(s)",
    )


def rule_expression(name: str) -> str:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules" / "monitor.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == name]
    return str(rule["expr"])


def test_runs_failing_fires_on_the_third_failure_of_a_fresh_daemon(
    daemon: str, prometheus: str
) -> None:
    # The fresh daemon's counter, at 0 before any run, scraped a few times: increase()
    # extrapolates to the end of its window by up to one scrape interval, which a series
    # only seconds long would stretch by a large share.
    wait_for(
        lambda: query(prometheus, f"count_over_time({FAILED}[1h]) >= 6 and {FAILED} == 0"),
        timeout=60,
        what="Prometheus to scrape the failed-runs counter at 0 for a few seconds",
    )
    with httpx.Client(base_url=daemon, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for failures in (1, 2):
            fail_a_run(http, prometheus, failures)
        # What the rule evaluates: the first failure counted, two are not enough.
        rise = float(query(prometheus, f"increase({FAILED}[1h])")[0]["value"][1])
        assert 2 <= rise < 3
        assert query(prometheus, rule_expression("MonitorRunsFailing")) == []
        assert query(prometheus, FIRING) == []
        fail_a_run(http, prometheus, 3)
    wait_for(lambda: query(prometheus, FIRING), timeout=30, what="MonitorRunsFailing to fire")
