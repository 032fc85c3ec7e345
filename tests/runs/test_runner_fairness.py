"""A classification suite with ``fairness`` through the real runner against a loopback
model: the run's measures equal fairlearn's on the answers the model gave, and they are
in the run's JSON (as ``GET /v1/runs/{id}`` answers), ``monitor runs show`` and
``/metrics``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from fairlearn import metrics as fm
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.cli import cli
from monitor.config import HttpModelConfig, SuiteConfig, parse_config
from monitor.metrics.collector import StoreCollector
from monitor.records import Run, RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from monitor.wire.runs import RunOut
from tests.api.conftest import served_app
from tests.runs.test_runner_scoring import model_app
from tests.servers import deadline, serve_in_thread

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
N = 120


def gender(x: int) -> str:
    return "fmx"[x % 3]


def truth(x: int) -> int:
    return int(x * 7 % 5 < 2)


def answer(x: int) -> str:
    """Right for every f, wrong for every fourth m and x, and positive for some x."""
    if gender(x) == "f" or x % 4:
        return str(truth(x))
    return "1" if gender(x) == "x" else str(1 - truth(x))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """One run of the suite, on a SQLite store shared by the module's tests."""
    tmp = tmp_path_factory.mktemp("fairness")
    path = tmp / "cases.jsonl"
    rows = [{"id": f"c{x:03d}", "x": x, "label": truth(x), "gender": gender(x)} for x in range(N)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    suite = SuiteConfig.model_validate(
        {
            "name": "loans",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            "metadata": ["gender"],
            "fairness": {"groups": "gender", "positive": "1"},
        }
    )
    url = f"sqlite:///{tmp / 'monitor.db'}"
    store = Store(url)
    store.upgrade()
    try:
        run = _run(store, suite)
    finally:
        store.close()
    config = tmp / "monitor.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    return config, run


def _run(store: Store, suite: SuiteConfig) -> Run:
    async def go() -> Run:
        with serve_in_thread(model_app(answer)) as url:
            model = HttpModelConfig.model_validate(
                {
                    "name": "m",
                    "adapter": "http",
                    "url": f"{url}/predict",
                    "body": {"x": "{{x}}"},
                    "concurrency": 4,
                }
            )
            runner = Runner(store, clock=lambda: NOW)
            try:
                return await runner.run(suite, model)
            finally:
                await runner.aclose()

    return asyncio.run(go())


def test_the_runs_measures_are_fairlearns_on_the_models_answers(
    stored: tuple[Path, Run],
) -> None:
    _, run = stored
    assert run.status is RunStatus.SUCCEEDED and run.n_cases == N
    y = np.array([truth(x) for x in range(N)])
    p = np.array([int(answer(x)) for x in range(N)])
    g = [gender(x) for x in range(N)]
    expected = {
        "demographic_parity_difference": fm.demographic_parity_difference(
            y, p, sensitive_features=g
        ),
        "demographic_parity_ratio": fm.demographic_parity_ratio(y, p, sensitive_features=g),
        "equalized_odds_difference": fm.equalized_odds_difference(y, p, sensitive_features=g),
    }
    measured = {f.measure: f for f in run.fairness}
    assert sorted(measured) == sorted(expected)
    for name, value in expected.items():
        assert measured[name].value == pytest.approx(value, abs=1e-9), name
        assert (measured[name].groups, measured[name].n) == ("gender", N)
    assert expected["equalized_odds_difference"] > 0.2  # the test data are unfair


def test_the_runs_json_and_runs_show_carry_the_measures(stored: tuple[Path, Run]) -> None:
    config, run = stored
    shown = RunOut.of(run).model_dump(mode="json")["fairness"]
    assert [(f["measure"], f["groups"], f["n"]) for f in shown] == [
        (f.measure, "gender", N) for f in run.fairness
    ]
    result = CliRunner().invoke(cli, ["runs", "show", "-c", str(config), str(run.id), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["fairness"] == shown
    result = CliRunner().invoke(cli, ["runs", "show", "-c", str(config), str(run.id)])
    eod = next(f for f in run.fairness if f.measure == "equalized_odds_difference")
    assert f"fairness  equalized_odds_difference over gender: {eod.value:.4g} [" in result.output


def test_the_api_answers_the_runs_measures(stored: tuple[Path, Run]) -> None:
    config_path, run = stored
    config = parse_config(
        {"store": {"url": config_path.read_text().split('"')[1]}, "server": {"open_reads": True}},
        base_dir=config_path.parent,
    )
    store = Store(config.store.url)
    try:
        with served_app(config, store) as url:
            answer = httpx.get(f"{url}/v1/runs/{run.id}", timeout=deadline(10))
    finally:
        store.close()
    assert answer.status_code == 200
    assert answer.json()["fairness"] == RunOut.of(run).model_dump(mode="json")["fairness"]
    assert {f["measure"] for f in answer.json()["fairness"]} == {f.measure for f in run.fairness}


def test_metrics_export_the_latest_runs_measures(stored: tuple[Path, Run]) -> None:
    config, run = stored
    url = config.read_text().split('"')[1]
    store = Store(url)
    try:
        registry = CollectorRegistry()
        registry.register(StoreCollector(store, version=__version__))
        text = generate_latest(registry).decode()
    finally:
        store.close()
    samples: dict[tuple[str, str], Any] = {
        (s.name, s.labels["measure"]): s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("monitor_suite_fairness")
    }
    for f in run.fairness:
        value = samples["monitor_suite_fairness", f.measure]
        assert value.labels == {"suite": "loans", "model": "m", "measure": f.measure}
        assert value.value == pytest.approx(f.value)
        assert samples["monitor_suite_fairness_lower", f.measure].value == pytest.approx(f.lower)
        assert samples["monitor_suite_fairness_upper", f.measure].value == pytest.approx(f.upper)
