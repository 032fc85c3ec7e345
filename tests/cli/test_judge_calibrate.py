"""``monitor judge calibrate`` against a loopback judge with a known error rate: its
accuracy against the human labels is exactly the share of judgements it did not flip."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from tests.judge_server import running_judge

N = 40


def write_config(tmp_path: Path, judge_url: str, human: list[object]) -> Path:
    rows = [
        {
            "id": f"c{i:02d}",
            "question": "q",
            "answer": "GOOD answer" if i % 2 else "poor answer",
            "human": label,
            "expected": "",
        }
        for i, label in enumerate(human)
    ]
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "monitor.toml"
    config.write_text(
        f"""
[[models]]
name = "assistant"
adapter = "http"
url = "http://127.0.0.1:9/predict"

[[models]]
name = "j"
adapter = "openai"
url = "{judge_url}"
model = "judge-1"
role = "judge"
price = {{ prompt = 1.0, completion = 1.0, per_tokens = 1000 }}

[[suites]]
name = "qa"
dataset = "labelled.jsonl"
task = "text"
inputs = ["question"]
metadata = ["answer", "human"]
models = ["assistant"]
metrics = [{{ name = "rubric", judge = "j", criterion = "says GOOD" }}]
"""
    )
    return config


def test_calibrate_reports_the_judges_measured_error_rate(tmp_path: Path) -> None:
    truth = ["pass" if i % 2 else "fail" for i in range(N)]
    with running_judge(mode="noisy", error_rate=0.2, seed=11) as judge:
        config = write_config(tmp_path, judge.url, truth)
        result = CliRunner().invoke(
            cli, ["judge", "calibrate", "-c", str(config), "--suite", "qa", "--json"]
        )
        flips = judge.flips
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (metric,) = report["metrics"]
    assert metric["n"] == N
    assert metric["accuracy"]["value"] == (N - flips) / N
    assert 0 < flips < N
    (usage,) = report["usage"]
    assert (usage["requests"], usage["errors"]) == (N, 0)
    assert usage["cost"] is not None


def test_an_off_scale_label_names_the_case(tmp_path: Path) -> None:
    labels: list[object] = ["pass"] * N
    labels[7] = "maybe"
    with running_judge() as judge:
        config = write_config(tmp_path, judge.url, labels)
        result = CliRunner().invoke(cli, ["judge", "calibrate", "-c", str(config), "--suite", "qa"])
    assert result.exit_code == 2
    assert "labelled.jsonl: case 'c07': field 'human': 'maybe' is not on the scale" in result.output


def test_the_text_report_shows_agreement_and_the_confusion_matrix(tmp_path: Path) -> None:
    truth = ["pass" if i % 2 else "fail" for i in range(N)]
    with running_judge() as judge:
        config = write_config(tmp_path, judge.url, truth)
        result = CliRunner().invoke(cli, ["judge", "calibrate", "-c", str(config), "--suite", "qa"])
    assert result.exit_code == 0, result.output
    assert "accuracy         1.000 [" in result.output
    assert "confusion (rows: people, columns: judge)" in result.output


def test_an_unreachable_judge_exits_3_naming_it(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/v1", ["pass"] * N)
    text = config.read_text().replace(
        'role = "judge"\n', 'role = "judge"\nretry = { attempts = 1 }\n'
    )
    config.write_text(text)
    result = CliRunner().invoke(cli, ["judge", "calibrate", "-c", str(config), "--suite", "qa"])
    assert result.exit_code == 3, result.output
    assert f"judge 'j' of metric 'rubric' answered none of {N} requests: connection" in (
        result.output
    )
    assert f"127.0.0.1:{port}" in result.output
