"""``monitor bench`` against a real loopback model: table, JSON, exit codes."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request

from monitor.cli import cli
from tests.servers import serve_in_thread


def _model_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"prediction": "a" if body["x"] % 5 else "b"}

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "cases.jsonl").write_text(
        "".join(
            json.dumps({"id": f"c{i}", "x": i, "segment": f"s{i % 2}", "label": "a"}) + "\n"
            for i in range(40)
        )
    )
    with serve_in_thread(_model_app()) as url:
        path = tmp_path / "monitor.toml"
        path.write_text(
            f"""
[store]
url = "sqlite:///{tmp_path / "monitor.db"}"

[[models]]
name = "good"
adapter = "http"
url = "{url}/predict"

[[models]]
name = "good-too"
adapter = "http"
url = "{url}/predict"

[[models]]
name = "gone"
adapter = "http"
url = "http://127.0.0.1:{_free_port()}/predict"
timeout = "2s"

[[suites]]
name = "qa"
dataset = "cases.jsonl"
task = "classification"
expected = "label"
inputs = ["x"]
metadata = ["segment"]
slices = ["segment"]
metrics = ["accuracy", {{name = "f1", average = "macro"}}]
models = ["good"]
"""
        )
        yield path


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["bench", *args])


def test_bench_prints_models_side_by_side(config: Path) -> None:
    result = _invoke("-c", str(config), "--suite", "qa", "--model", "good", "--model", "good-too")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "good" in out and "good-too" in out
    assert "accuracy" in out and "0.8000 [" in out and "(n=40)" in out
    assert "unknown" in out  # no price: cost is unknown, not 0


def test_bench_json_and_failed_run_exit_3(config: Path) -> None:
    result = _invoke(
        "-c", str(config), "--suite", "qa", "--model", "good", "--model", "gone", "--json"
    )
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    good, gone = document["runs"]
    assert good["status"] == "succeeded" and gone["status"] == "failed"
    metrics = {m["name"]: m for m in good["metrics"]}
    assert metrics["accuracy"]["value"] == pytest.approx(0.8) and metrics["accuracy"]["n"] == 40
    assert metrics["f1"]["lower"] < metrics["f1"]["value"] < metrics["f1"]["upper"]
    assert good["operations"]["cost"] is None and good["operations"]["error_rate"] == 0.0
    assert {g["field"] for g in good["slice_gaps"]} == {"segment"}
    for gap in good["slice_gaps"]:  # stored with the run, with the interval's bounds
        assert gap["best"] != gap["worst"]
        assert gap["lower"] <= gap["gap"] <= gap["upper"]
    assert "connection x40" in gone["error"]


def test_bench_progress_goes_to_stderr_only_when_asked_off_a_terminal(config: Path) -> None:
    asked = _invoke("-c", str(config), "--suite", "qa", "--json", "--progress")
    quiet = _invoke("-c", str(config), "--suite", "qa", "--json")
    assert asked.exit_code == quiet.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["runs"][0]["n_cases"] == 40  # stdout is the JSON alone
    assert re.fullmatch(r"qa x good: 40/40 cases, [\d.]+ cases/s, 0:00:00 left\n", asked.stderr)
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--suite", "nope"], "no suite 'nope'", id="suite"),
        pytest.param(["--suite", "qa", "--model", "nope"], "no model 'nope'", id="model"),
    ],
)
def test_bench_usage_errors_exit_2(config: Path, args: list[str], message: str) -> None:
    result = _invoke("-c", str(config), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_table_shows_sacrebleu_signature_and_unknown_cost() -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from monitor.cli.bench import table
    from monitor.records import MetricValue, Run, RunStatus

    at = datetime(2026, 1, 1, tzinfo=UTC)
    run = Run(
        id=7,
        suite="mt",
        model="m",
        status=RunStatus.SUCCEEDED,
        trigger="bench",
        created_at=at,
        started_at=at,
        finished_at=at,
        dataset_sha256="0" * 64,
        config_hash="h",
        n_cases=3,
        n_errors=0,
        error=None,
        metrics=(MetricValue("bleu", 31.2, 25.0, 36.0, 3, "nrefs:1|tok:13a|version:2.6.0"),),
    )
    console = Console(record=True, width=200)
    console.print(table([run]))
    text = console.export_text()
    assert "bleu: nrefs:1|tok:13a|version:2.6.0" in text
    assert "31.2000 [25.0000, 36.0000] (n=3)" in text and "unknown" in text
