"""``monitor gate`` end to end, as a CI job runs it: the real command in a subprocess,
against loopback model servers (one unchanged, one degraded, one down), judged against a
baseline promoted with ``monitor baseline promote``. Exit codes 0, 1, 2 and 3, and the
reports it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from monitor.cli.gate import gate
from monitor.gate import GATE_FLAGS, TOKEN_ENV
from tests.servers import MonitorProcess, deadline, serve_in_thread

CASES = 200
TOKEN = "gate-token-0123456789abcdef"
ENV = {"GATE_TOKEN": TOKEN}


def parity_model(*, degraded: bool) -> FastAPI:
    """Answers the parity of ``n``; degraded, every tenth case is wrong."""
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: dict[str, Any]) -> dict[str, Any]:
        n = int(body["n"])
        wrong = degraded and n % 10 == 0
        return {"label": "odd" if (n % 2 == 0) == wrong else "even"}

    return app


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config with three models and a promoted production baseline."""
    root = tmp_path_factory.mktemp("gate")
    (root / "parity.jsonl").write_text(
        "".join(
            json.dumps({"id": f"n{n:03d}", "n": n, "label": "even" if n % 2 == 0 else "odd"}) + "\n"
            for n in range(CASES)
        )
    )
    with (
        serve_in_thread(parity_model(degraded=False)) as good,
        serve_in_thread(parity_model(degraded=True)) as bad,
    ):
        model = "{{n}}"
        (root / "monitor.toml").write_text(
            f"""
[server]
port = 0

[[server.tokens]]
name = "ci"
token = "${{GATE_TOKEN}}"
scopes = ["read", "write"]

[store]
data_dir = "data"

[[models]]
name = "prod"
adapter = "http"
url = "{good}/predict"
body = {{ n = "{model}" }}
prediction = "label"

[[models]]
name = "candidate"
role = "candidate"
adapter = "http"
url = "{bad}/predict"
body = {{ n = "{model}" }}
prediction = "label"

[[models]]
name = "broken"
role = "candidate"
adapter = "http"
url = "http://127.0.0.1:1/predict"
body = {{ n = "{model}" }}
prediction = "label"
retry = {{ attempts = 0 }}

[[suites]]
name = "numbers"
dataset = "parity.jsonl"
task = "classification"
expected = "label"
inputs = ["n"]
metrics = ["accuracy"]
models = ["prod", "candidate", "broken"]
"""
        )
        first = monitor(
            "bench",
            "-c",
            "monitor.toml",
            "--suite",
            "numbers",
            "--model",
            "prod",
            "--json",
            cwd=root,
        )
        assert first.returncode == 0, first.stderr
        run_id = json.loads(first.stdout)["runs"][0]["id"]
        promoted = monitor(
            "baseline", "promote", "-c", "monitor.toml", str(run_id), "--reason", "v1", cwd=root
        )
        assert promoted.returncode == 0, promoted.stderr
        assert f"run {run_id} is now the baseline of numbers on prod" in promoted.stdout
        yield root


def monitor(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        env={**os.environ, **ENV, **(env or {})},
    )


def run_gate(
    root: Path, model: str, *extra: str, name: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    name = name or model
    reports = ["--report-md", f"{name}.md", "--report-json", f"{name}.json"]
    return monitor(
        "gate",
        "-c",
        "monitor.toml",
        "--suite",
        "numbers",
        "--model",
        model,
        *reports,
        "--junit",
        f"{name}.xml",
        *extra,
        cwd=root,
        env=env,
    )


def test_an_unchanged_model_passes(setup: Path) -> None:
    done = run_gate(setup, "prod", "--progress")
    assert done.returncode == 0, done.stderr
    # progress on stderr (asked for: stderr is not a terminal), the verdict alone on stdout
    progress = f"gate numbers x prod: {CASES}/{CASES} cases, "
    assert progress in done.stderr and "cases/s" in done.stderr
    assert "cases/s" not in done.stdout and len(done.stdout.splitlines()) == 1
    report = json.loads((setup / "prod.json").read_text())
    assert report["verdict"]["outcome"] == "pass" and report["exit_code"] == 0
    assert report["verdict"]["metrics"][0]["n"] == CASES
    assert report["run"]["trigger"] == "gate"
    markdown = (setup / "prod.md").read_text()
    assert "**Pass**" in markdown and "| accuracy |" in markdown


def test_a_degraded_candidate_is_judged_against_production_and_regresses(setup: Path) -> None:
    done = run_gate(setup, "candidate")
    assert done.returncode == 1, done.stderr
    assert "cases/s" not in done.stderr  # no progress off a terminal unless asked for
    report = json.loads((setup / "candidate.json").read_text())
    verdict = report["verdict"]
    assert verdict["outcome"] == "regressed" and verdict["model"] == "candidate"
    assert report["baseline"]["model"] == "prod"
    (row,) = verdict["metrics"]
    assert (row["degraded"], row["improved"]) == (CASES // 10, 0)
    markdown = (setup / "candidate.md").read_text()
    assert "**Regressed**" in markdown
    # The degraded cases are listed with both predictions.
    assert "n000" in markdown and "even" in markdown and "odd" in markdown
    suite = ET.parse(setup / "candidate.xml").getroot().find("testsuite")
    assert suite is not None and suite.find("testcase/failure") is not None
    # The same report can be asked against production explicitly.
    again = run_gate(setup, "candidate", "--baseline", "production", "--sample", "50")
    assert again.returncode in (0, 1), again.stderr
    sampled = json.loads((setup / "candidate.json").read_text())
    assert sampled["verdict"]["metrics"][0]["n"] == 50


def test_a_broken_endpoint_is_an_infrastructure_error_not_a_regression(setup: Path) -> None:
    done = run_gate(setup, "broken")
    assert done.returncode == 3, done.stderr
    assert "connection" in done.stderr and "exceeds max_error_rate" in done.stderr
    markdown = (setup / "broken.md").read_text()
    assert "not judged" in markdown and "Regressed" not in markdown
    assert not (setup / "broken.json").exists()


def test_usage_errors_exit_2(setup: Path) -> None:
    unknown = run_gate(setup, "nobody")
    assert unknown.returncode == 2 and "no model 'nobody'" in unknown.stderr
    bad_choice = run_gate(setup, "prod", "--baseline", "latest")
    assert bad_choice.returncode == 2 and "run id or 'production'" in bad_choice.stderr
    missing = run_gate(setup, "prod", "--baseline", "9999")
    assert missing.returncode == 2 and "baseline run 9999 not found" in missing.stderr


def test_remote_and_local_gates_give_the_same_report(setup: Path) -> None:
    daemon = MonitorProcess("run", "-c", "monitor.toml", cwd=setup, env=ENV)
    try:
        url = daemon.wait_for_line(r"HTTP API on (http://\S+) ").group(1)
        remote = run_gate(
            setup, "candidate", "--remote", url, name="remote", env={"MONITOR_TOKEN": TOKEN}
        )
        assert remote.returncode == 1, remote.stderr + daemon.output()
        local = run_gate(setup, "candidate", name="local")
        assert local.returncode == 1, local.stderr
        reports = [json.loads((setup / f"{n}.json").read_text()) for n in ("remote", "local")]
        assert reports[0]["run"]["trigger"] == "api" and reports[1]["run"]["trigger"] == "gate"
        assert reports[0]["run"]["id"] != reports[1]["run"]["id"]
        for key in ("outcome", "metrics", "changes", "baseline_run_id", "suite", "model"):
            assert reports[0]["verdict"][key] == reports[1]["verdict"][key], key
        assert reports[0]["summary"] == reports[1]["summary"].replace(
            f"run {reports[1]['run']['id']}", f"run {reports[0]['run']['id']}"
        )
        # The Markdown differs only where the runs do: ids, times, durations.
        remote_md, local_md = ((setup / f"{n}.md").read_text() for n in ("remote", "local"))
        assert remote_md.splitlines()[0] == local_md.splitlines()[0]
        metric_rows = [
            [line for line in md.splitlines() if line.startswith("| accuracy |")]
            for md in (remote_md, local_md)
        ]
        assert metric_rows[0] == metric_rows[1] and metric_rows[0]
        # A token the daemon does not know is a usage error, never a regression.
        refused = run_gate(
            setup,
            "candidate",
            "--remote",
            url,
            name="refused",
            env={"MONITOR_TOKEN": "not-the-token-0123456789"},
        )
        assert refused.returncode == 2, refused.stderr
        assert "not-the-token" not in refused.stderr
    finally:
        daemon.stop()


def test_the_command_takes_exactly_the_documented_flags() -> None:
    options = [opt for param in gate.params for opt in param.opts if opt.startswith("-")]
    documented = set(GATE_FLAGS) | {"--config"}
    assert set(options) == documented


def test_remote_help_names_the_variable_the_token_is_read_from() -> None:
    # The CLI writes the name out (importing the gate would slow every command's start).
    (remote,) = [param for param in gate.params if "--remote" in param.opts]
    assert f"${TOKEN_ENV}" in str(getattr(remote, "help", ""))


def test_baseline_list_show_and_refusals(setup: Path) -> None:
    listed = monitor("baseline", "list", "-c", "monitor.toml", "--json", cwd=setup)
    assert listed.returncode == 0, listed.stderr
    (entry,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert entry["active"] and entry["reason"] == "v1" and entry["model"] == "prod"
    shown = monitor(
        "baseline",
        "show",
        "-c",
        "monitor.toml",
        "--suite",
        "numbers",
        "--model",
        "prod",
        cwd=setup,
    )
    assert shown.returncode == 0 and "accuracy = 1.0000" in shown.stdout
    none = monitor(
        "baseline",
        "show",
        "-c",
        "monitor.toml",
        "--suite",
        "numbers",
        "--model",
        "broken",
        cwd=setup,
    )
    assert none.returncode == 2 and "numbers on broken has no baseline" in none.stderr
    missing = monitor("baseline", "promote", "-c", "monitor.toml", "9999", cwd=setup)
    assert missing.returncode == 2 and "run 9999 not found" in missing.stderr
