"""The model registry against a real ``mlflow server`` (SQLite backend) on loopback, and
``monitor gate`` as CI runs it: a model's version comes from a registry alias (and fills
its URL), every run records it, a passing gate with ``--promote-alias`` moves the alias
to the evaluated version and tags it with the verdict, a failing gate promotes nothing,
and a registry that cannot be reached is an infrastructure error (exit 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.registry.conftest import QUIET, Registry
from tests.servers import deadline, serve_in_thread

pytestmark = pytest.mark.integration

CASES = 60


def versions_app() -> FastAPI:
    """Serves each model version at ``/v{version}/predict``: the parity of ``n``; version 2
    is degraded (every fifth case wrong)."""
    app = FastAPI()

    @app.post("/v{version}/predict")
    async def predict(version: int, body: dict[str, Any]) -> dict[str, Any]:
        n = int(body["n"])
        wrong = version == 2 and n % 5 == 0
        return {"label": "odd" if (n % 2 == 0) == wrong else "even"}

    return app


def monitor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=deadline(120),
        env={**os.environ, **QUIET, "USER": "ci-bot"},
    )


@pytest.fixture(scope="module")
def setup(
    mlflow_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Registry]]:
    """Registered model ``churn`` with versions 1 (good), 2 (degraded) and 3 (good);
    ``champion`` names 1, whose run is the baseline."""
    registry = Registry(mlflow_url)
    registry.register(3)
    registry.set_alias("champion", "1")
    root = tmp_path_factory.mktemp("gate")
    (root / "parity.jsonl").write_text(
        "".join(
            json.dumps({"id": f"n{n:03d}", "n": n, "label": "even" if n % 2 == 0 else "odd"}) + "\n"
            for n in range(CASES)
        )
    )
    with serve_in_thread(versions_app()) as served:
        body = '{ n = "{{n}}" }'
        (root / "monitor.toml").write_text(
            f"""
[store]
data_dir = "data"

[[models]]
name = "prod"
adapter = "http"
url = "{served}/v{{version}}/predict"
body = {body}
prediction = "label"
registry = {{ kind = "mlflow", url = "{mlflow_url}", name = "churn", alias = "champion" }}

[[models]]
name = "candidate"
role = "candidate"
adapter = "http"
url = "{served}/v{{version}}/predict"
body = {body}
prediction = "label"
registry = {{ kind = "mlflow", url = "{mlflow_url}", name = "churn", alias = "challenger" }}

[[models]]
name = "lost"
role = "candidate"
adapter = "http"
url = "{served}/v{{version}}/predict"
body = {body}
prediction = "label"
registry = {{ kind = "mlflow", url = "http://127.0.0.1:1", name = "churn", alias = "champion" }}

[[suites]]
name = "numbers"
dataset = "parity.jsonl"
task = "classification"
expected = "label"
inputs = ["n"]
metrics = ["accuracy"]
models = ["prod", "candidate", "lost"]
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
        (run,) = json.loads(first.stdout)["runs"]
        promoted = monitor("baseline", "promote", "-c", "monitor.toml", str(run["id"]), cwd=root)
        assert promoted.returncode == 0, promoted.stderr
        yield root, registry


def gate(root: Path, model: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return monitor(
        "gate", "-c", "monitor.toml", "--suite", "numbers", "--model", model,
        "--report-json", f"{model}.json", "--report-md", f"{model}.md", *extra,
        cwd=root,
    )  # fmt: skip


def test_the_baseline_run_recorded_the_version_its_alias_named(
    setup: tuple[Path, Registry],
) -> None:
    root, _ = setup
    # (the JSON form, RunOut, is read back from the gate's reports below)
    shown = monitor("runs", "show", "-c", "monitor.toml", "1", cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "version   1 (from the model's registry alias)" in shown.stdout


def test_a_passing_gate_moves_the_alias_and_tags_the_version(
    setup: tuple[Path, Registry],
) -> None:
    root, registry = setup
    registry.set_alias("champion", "1")
    registry.set_alias("challenger", "3")
    done = gate(root, "candidate", "--promote-alias", "champion")
    assert done.returncode == 0, done.stderr
    report = json.loads((root / "candidate.json").read_text())
    verdict, run = report["verdict"], report["run"]
    assert verdict["outcome"] == "pass" and run["model_version"] == "3"
    assert report["baseline"]["model_version"] == "1"
    assert "Model version `3` (the baseline's: `1`)" in (root / "candidate.md").read_text()
    assert registry.alias("champion") == "3"
    tags = registry.tags("3")
    assert {k: v for k, v in tags.items() if k.startswith("monitor.")} == {
        "monitor.verdict_id": str(verdict["id"]),
        "monitor.outcome": "pass",
        "monitor.suite": "numbers",
        "monitor.dataset_sha256": run["dataset_sha256"],
        "monitor.run_id": str(run["id"]),
        "monitor.baseline_run_id": str(report["baseline"]["id"]),
    }
    assert "promoted version 3 of registered model 'churn' to alias 'champion'" in done.stderr
    exported = monitor(
        "audit", "export", "-c", "monitor.toml", "--since", "2000-01-01", "--format", "jsonl",
        cwd=root,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    (promotion,) = [e for e in entries if e["action"] == "registry.promoted"]
    assert promotion["actor"] == "ci-bot" and promotion["target"] == "model version churn/3"
    assert promotion["details"]["alias"] == "champion"
    assert promotion["details"]["verdict_id"] == verdict["id"]


def test_a_failing_gate_promotes_nothing(setup: tuple[Path, Registry]) -> None:
    root, registry = setup
    registry.set_alias("champion", "1")
    registry.set_alias("challenger", "2")
    done = gate(root, "candidate", "--promote-alias", "champion")
    assert done.returncode == 1, done.stderr
    report = json.loads((root / "candidate.json").read_text())
    assert report["verdict"]["outcome"] == "regressed" and report["run"]["model_version"] == "2"
    assert registry.alias("champion") == "1"
    assert not any(key.startswith("monitor.") for key in registry.tags("2"))
    assert "promoted" not in done.stderr


def test_an_unreachable_registry_is_an_infrastructure_error(
    setup: tuple[Path, Registry],
) -> None:
    root, _ = setup
    done = gate(root, "lost", "--promote-alias", "champion")
    assert done.returncode == 3, done.stderr
    assert "MLflow registry at http://127.0.0.1:1 is unreachable" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "lost.json").exists()


def test_promote_alias_needs_a_model_with_a_registry_and_a_valid_alias(
    setup: tuple[Path, Registry], tmp_path: Path
) -> None:
    root, _ = setup
    reserved = gate(root, "candidate", "--promote-alias", "latest")
    assert reserved.returncode == 2 and "MLflow reserves them" in reserved.stderr
    remote = gate(root, "candidate", "--promote-alias", "champion", "--remote", "http://x.test")
    assert remote.returncode == 2 and "cannot go with --remote" in remote.stderr
