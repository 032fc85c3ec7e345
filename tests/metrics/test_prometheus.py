"""The Prometheus side checked against the real tools: a real Prometheus scrapes a daemon
running the demo, then every dashboard query and every rule expression runs through
Prometheus's HTTP API. Also promtool, amtool and the compose file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.servers import ROOT, MonitorProcess, deadline, find_tool, wait_for

pytestmark = pytest.mark.integration

# How the dashboards' variables are filled in when the queries run outside Grafana.
VARIABLES = {
    "$__rate_interval": "30s",
    "$suite": ".*",
    "$model": ".*",
    "$metric": ".*",
    "$stream": ".*",
    "$column": ".*",
}


def tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.skip(
            f"{name} is not installed (Debian packages prometheus / prometheus-alertmanager)"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("demo")
    process = MonitorProcess("demo", "--port", "0", "--data-dir", str(data), "--every", "3s")
    try:
        yield process.wait_for_line(r"metrics:\s+(http://\S+)/metrics").group(1)
    finally:
        process.proc.terminate()
        process.stop()


@pytest.fixture(scope="module")
def prometheus(demo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")],
        "scrape_configs": [
            {"job_name": "monitor", "static_configs": [{"targets": [demo.removeprefix("http://")]}]}
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    process, url = start_prometheus(binary, workdir)
    try:

        def scraped() -> bool:
            return bool(query(url, "monitor_eval_score")) and bool(
                query(url, 'up{job="monitor"} == 1')
            )

        wait_for(scraped, timeout=60, what="Prometheus to scrape a score from the daemon")
        # Rates need two samples of a series inside their window.
        counters = [
            "monitor_runs_finished_total",
            "monitor_stream_rows_ingested_total",
            "monitor_model_requests_total",
            "monitor_tokens_total",
            "monitor_cost_total",
        ]
        wait_for(
            lambda: (
                all(query(url, f"min(count_over_time({c}[30s])) >= 2") for c in counters)
                and query(url, "monitor_drift_share")
                and query(url, "monitor_verdict_outcome")
            ),
            timeout=60,
            what="two scrapes of the runs, rows, requests, tokens and cost counters, "
            "a drift report and a verdict (the demo's second run)",
        )
        yield url
    finally:
        process.terminate()
        process.wait(timeout=deadline(30))


def start_prometheus(binary: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start Prometheus on a free port (retrying if another process takes it first) and
    wait until it is ready. Its log goes to a file: an unread pipe would fill and stall it."""
    log = workdir / "prometheus.log"
    for _ in range(3):
        port = free_port()
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=sink,
                stderr=sink,
            )
        url = f"http://127.0.0.1:{port}"

        def ready(process: subprocess.Popen[bytes] = process, url: str = url) -> bool | None:
            if process.poll() is not None:
                return None
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(lambda: ready() is not False, timeout=60, what="Prometheus to start")
        if ready():
            return process, url
    raise AssertionError("Prometheus did not start:\n" + log.read_text())


def query(url: str, expr: str) -> list[Any]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", f"{expr}: {answer}"
    result: list[Any] = answer["data"]["result"]
    return result


def dashboard_queries() -> list[Any]:
    params = []
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                params.append(
                    pytest.param(
                        target["expr"], id=f"{board['uid']}/{panel['title']}/{target['refId']}"
                    )
                )
    return params


def rule_expressions() -> list[Any]:
    params = []
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            params += [
                pytest.param(rule["expr"], id=rule.get("alert") or rule["record"])
                for rule in group["rules"]
            ]
    return params


@pytest.mark.parametrize("expr", dashboard_queries())
def test_every_dashboard_query_runs_and_has_demo_data(prometheus: str, expr: str) -> None:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert query(prometheus, expr), f"no data for: {expr}"


@pytest.mark.parametrize("expr", rule_expressions())
def test_every_rule_expression_is_valid_promql(prometheus: str, expr: str) -> None:
    query(prometheus, expr)  # raises on a query error; an alert that does not fire is fine


def test_a_real_scrape_passes_promtool_check_metrics(demo: str) -> None:
    scrape = httpx.get(f"{demo}/metrics").text
    done = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=scrape, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["promtool", "check", "config", "--syntax-only", "deploy/prometheus/prometheus.yml"],
        ["promtool", "check", "rules", "deploy/prometheus/rules/monitor.yml"],
        ["promtool", "test", "rules", "deploy/prometheus/tests/monitor.test.yml"],
        ["amtool", "check-config", "deploy/alertmanager/alertmanager.yml"],
        ["docker-compose", "-f", "deploy/docker-compose.yml", "config", "-q"],
    ],
    ids=["prometheus-config", "rules", "rule-tests", "alertmanager-config", "compose"],
)
def test_deployment_files_pass_their_tools(command: list[str]) -> None:
    done = subprocess.run(
        [tool(command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=deadline(120),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_replicas_compose_example_is_valid() -> None:
    done = subprocess.run(
        [tool("docker-compose"), "-f", "deploy/replicas/docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        env={**os.environ, "POSTGRES_PASSWORD": "example"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_replicas_config_passes_check_config(tmp_path: Path) -> None:
    """deploy/replicas/config.toml as its compose file runs it: the store URL from the
    environment, the datasets directory mounted at /etc/monitor/datasets (here the
    demo's holdout set, which the example's suite is written for)."""
    compose = yaml.safe_load((ROOT / "deploy/replicas/docker-compose.yml").read_text())
    assert "./datasets:/etc/monitor/datasets:ro" in compose["x-monitor"]["volumes"]
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "wine-test.jsonl").write_bytes(
        (ROOT / "monitor/demo/data/wine-test.jsonl").read_bytes()
    )
    text = (ROOT / "deploy/replicas/config.toml").read_text()
    config = tmp_path / "config.toml"
    config.write_text(text.replace("/etc/monitor/datasets/", f"{datasets}/"))
    store = "postgresql://monitor:example@postgres:5432/monitor"
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=deadline(60),
        env={**os.environ, "MONITOR_STORE_URL": store},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wine-holdout: every 1m on wine-classifier" in done.stdout
    assert "store: postgresql://monitor:***@postgres:5432/monitor" in done.stdout
