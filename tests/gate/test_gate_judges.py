"""``monitor gate`` with judge metrics, as a CI job runs it: the real command in a
subprocess, a loopback model and a loopback judge, a baseline promoted with ``monitor
baseline promote``. The PR Markdown shows the judge metrics and the judges' requests,
prompts and cost apart from the model's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from monitor.config import load_config
from monitor.store import Store
from tests.judge_server import Judge, running_judge
from tests.servers import MonitorProcess, deadline, serve_in_thread, wait_for

CASES = 20
CONTEXT = "Paris is the capital of France."
JUDGED = ["faithfulness", "answer-relevance", "rubric:tone", "pairwise"]
pytestmark = pytest.mark.integration


def assistant() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": "GOOD. Paris is the capital of France"}

    return app


def monitor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=deadline(180),
        env=dict(os.environ),
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Judge]]:
    root = tmp_path_factory.mktemp("gate-judges")
    rows = [
        {"id": f"q{i:02d}", "question": f"capital {i}?", "context": CONTEXT, "answer": "Paris"}
        for i in range(CASES)
    ]
    (root / "rag.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with serve_in_thread(assistant()) as url, running_judge() as judge:
        (root / "monitor.toml").write_text(
            f"""
[store]
data_dir = "data"

[[models]]
name = "prod"
adapter = "http"
url = "{url}/predict"
body = {{ q = "{{{{question}}}}" }}
price = {{ prompt = 1.0, completion = 1.0 }}

[[models]]
name = "gpt-judge"
adapter = "openai"
url = "{judge.url}"
model = "judge-1"
role = "judge"
price = {{ prompt = 2.0, completion = 4.0, per_tokens = 1000 }}

[[suites]]
name = "rag"
dataset = "rag.jsonl"
task = "text"
expected = "answer"
inputs = ["question", "context"]
models = ["prod"]
metrics = [
  {{ name = "faithfulness", judge = "gpt-judge" }},
  {{ name = "answer-relevance", judge = "gpt-judge" }},
  {{ name = "rubric", judge = "gpt-judge", title = "tone", criterion = "says GOOD" }},
  {{ name = "pairwise", judge = "gpt-judge" }},
]
"""
        )
        first = monitor("bench", "-c", "monitor.toml", "--suite", "rag", "--json", cwd=root)
        assert first.returncode == 0, first.stderr
        run_id = json.loads(first.stdout)["runs"][0]["id"]
        # Promoted in process: one monitor process less to start (the gate tests cover
        # `monitor baseline promote`).
        store = Store(load_config(root / "monitor.toml").store.effective_url)
        try:
            store.verdicts.promote_baseline(run_id, by="test", reason="v1", at=datetime.now(UTC))
        finally:
            store.close()
        yield root, judge


def test_the_gate_reports_judge_metrics_and_the_judges_cost_apart(
    setup: tuple[Path, Judge],
) -> None:
    root, judge = setup
    asked = len(judge.requests)
    done = monitor(
        "gate", "-c", "monitor.toml", "--suite", "rag", "--model", "prod",
        "--report-md", "gate.md", "--report-json", "gate.json", cwd=root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "gate.json").read_text())
    rows = {m["metric"]: m for m in report["verdict"]["metrics"]}
    assert set(JUDGED) <= set(rows)
    # The same answers again: no regression, and pairwise is all ties (a sign test on 0-0).
    assert all(rows[m]["outcome"] in ("pass", "inconclusive") for m in JUDGED)
    assert rows["pairwise"]["degraded"] == rows["pairwise"]["improved"] == 0
    judges = {j["metric"]: j for j in report["run"]["judges"]}
    assert set(judges) == set(JUDGED)
    # An openai judge at temperature 0: unchanged cases come from the cache.
    assert all(j["cached"] + j["requests"] > 0 for j in judges.values())
    assert len(judge.requests) - asked == sum(j["requests"] for j in judges.values())
    markdown = (root / "gate.md").read_text()
    assert "#### Judges" in markdown
    for metric in JUDGED:
        assert f"| {metric} | gpt-judge |" in markdown


def test_the_daemon_runs_the_judged_suite_on_its_schedule(setup: tuple[Path, Judge]) -> None:
    """The same suite scheduled in ``monitor run``: a scheduled run scores every judge
    metric through the judge (or its cache), is judged against the baseline, and its
    judge scores reach ``/metrics``."""
    root, _ = setup
    text = (
        (root / "monitor.toml")
        .read_text()
        .replace('models = ["prod"]\n', 'models = ["prod"]\nschedule = { every = "2s" }\n')
    )
    (root / "daemon.toml").write_text(text + "\n[server]\nport = 0\n")
    daemon = MonitorProcess("run", "-c", str(root / "daemon.toml"), cwd=root)
    try:
        port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
        api = f"http://127.0.0.1:{port}"

        def judged() -> dict[str, Any] | None:
            runs = httpx.get(f"{api}/v1/runs", params={"limit": 50}, timeout=deadline(10))
            scheduled = {r["id"] for r in runs.json()["runs"] if r["trigger"] == "schedule"}
            verdicts = httpx.get(f"{api}/v1/verdicts", timeout=deadline(10)).json()["verdicts"]
            return next((v for v in verdicts if v["run_id"] in scheduled), None)

        verdict = wait_for(judged, timeout=120, what="a scheduled run judged by the daemon")
        run = httpx.get(f"{api}/v1/runs/{verdict['run_id']}", timeout=deadline(10)).json()
        assert run["status"] == "succeeded" and run["trigger"] == "schedule"
        assert {j["metric"] for j in run["judges"]} == set(JUDGED)
        assert set(JUDGED) <= {m["name"] for m in run["metrics"]}
        # Unchanged cases at temperature 0: answered by the judge or from its cache.
        assert all(j["requests"] + j["cached"] > 0 for j in run["judges"])
        scrape = httpx.get(f"{api}/metrics", timeout=deadline(10)).text
        scores = [line for line in scrape.splitlines() if line.startswith("monitor_eval_score{")]
        for metric in JUDGED:
            assert any(f'metric="{metric}"' in line and 'suite="rag"' in line for line in scores)
    finally:
        daemon.stop()


def test_judge_repeats_show_the_judges_agreement_and_cost_apart_from_the_models(
    tmp_path: Path,
) -> None:
    """``judge_repeats = 3`` with a judge wrong on a fifth of its judgements, the cache off:
    the gate's Markdown shows the judge's agreement with itself and the judge's cost
    (3 judgements a case), and the model's cost, from the model's own usage, apart."""
    rows = [
        {"id": f"q{i:02d}", "question": f"capital {i}?", "answer": "Paris"} for i in range(CASES)
    ]
    (tmp_path / "tone.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> dict[str, Any]:
        return {"prediction": "GOOD answer", "usage": {"in": 100, "out": 50}}

    with serve_in_thread(app) as url, running_judge(mode="noisy", error_rate=0.2) as judge:
        (tmp_path / "monitor.toml").write_text(
            f"""
[store]
data_dir = "data"

[[models]]
name = "prod"
adapter = "http"
url = "{url}/predict"
prompt_tokens = "usage.in"
completion_tokens = "usage.out"
price = {{ prompt = 1.0, completion = 1.0, per_tokens = 1000 }}

[[models]]
name = "gpt-judge"
adapter = "openai"
url = "{judge.url}"
model = "judge-1"
role = "judge"
price = {{ prompt = 2.0, completion = 4.0, per_tokens = 1000 }}

[[suites]]
name = "tone"
dataset = "tone.jsonl"
task = "text"
expected = "answer"
inputs = ["question"]
models = ["prod"]
judge_repeats = 3
judge_cache = false
metrics = [{{ name = "rubric", judge = "gpt-judge", criterion = "says GOOD" }}]
"""
        )
        first = monitor("bench", "-c", "monitor.toml", "--suite", "tone", "--json", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        store = Store(load_config(tmp_path / "monitor.toml").store.effective_url)
        try:
            run_id = json.loads(first.stdout)["runs"][0]["id"]
            store.verdicts.promote_baseline(run_id, by="test", reason="v1", at=datetime.now(UTC))
        finally:
            store.close()
        done = monitor(
            "gate", "-c", "monitor.toml", "--suite", "tone", "--model", "prod",
            "--report-md", "gate.md", "--report-json", "gate.json", cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((tmp_path / "gate.json").read_text())
    (usage,) = report["run"]["judges"]
    assert judge.flips > 0
    assert (usage["requests"], usage["cached"], usage["errors"]) == (3 * CASES, 0, 0)
    assert 0.5 < usage["agreement"] < 1.0  # each case agrees on 3 of 3 or 2 of 3
    assert usage["cost"] == pytest.approx(3 * CASES * (10 * 2.0 + 5 * 4.0) / 1000)
    markdown = (tmp_path / "gate.md").read_text()
    judges = markdown[markdown.index("#### Judges") :]
    (line,) = [row for row in judges.splitlines() if row.startswith("| rubric | gpt-judge |")]
    cells = [c.strip() for c in line.strip("|").split("|")]
    # Metric, judge, prompt, requests, errors, agreement, tokens, cost, the baseline's cost.
    assert cells[3:6] == [str(3 * CASES), "0", f"{usage['agreement'] * 100:.1f}%"]
    assert cells[6:8] == [f"{3 * CASES * 10:,}", f"{3 * CASES * 5:,}"]
    assert cells[8] == cells[9] == "2.4000 USD"
    # The model's own cost: its 150 tokens a case, not a cent of the judge's.
    model_cost = f"{CASES * 150 / 1000:,.4f} USD"
    assert f"| Cost | {model_cost} | {model_cost} |" in markdown
    assert report["run"]["operations"]["cost"] == pytest.approx(CASES * 150 / 1000)
