"""``monitor canary --promote-alias`` end to end: a real daemon scores two streams' windows,
a real ``mlflow server`` holds the candidate's registered model, and the command, a
subprocess, resolves the candidate's version from its registry alias, watches, and on a
promotion tags that version with the canary's evidence, moves the alias and records it in
the audit log (read back through the daemon's ``GET /v1/audit``). A roll-back, by the
streams or by a regressed verdict of the candidate's suite, leaves the registry alone; an
alias moved during the watch is exit 3 and no promotion; usage mistakes are exit 2."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from monitor.config import parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.records import RunStatus
from monitor.store import Store
from tests.gate.test_canary_daemon import READ_TOKEN, WRITE_TOKEN, feed, finished, stream
from tests.registry.conftest import QUIET, Registry
from tests.servers import MonitorProcess, deadline

pytestmark = pytest.mark.integration

NAME = "churn-canary"  # its own registered model: the MLflow server may be shared
FIRST_LOOK = r"monitor: canary .* s:"


@pytest.fixture(scope="module")
def registry(mlflow_url: str) -> Registry:
    """Versions 1 to 5 of ``churn-canary``; each test sets the aliases it needs."""
    found = Registry(mlflow_url, NAME)
    found.register(5)
    return found


@dataclass(frozen=True)
class Setup:
    url: str  # the daemon's
    root: Path  # holds monitor.toml, the canary's configuration (the daemon's store)
    store_url: str
    registry: Registry


@pytest.fixture
async def setup(tmp_path: Path, registry: Registry) -> AsyncIterator[Setup]:
    """A daemon with streams ``prod`` and ``cand`` (one labelled window of 100 records
    each), and monitor.toml: the same store, the candidate with its registry (alias
    ``challenger``), a model without one, one whose registry is unreachable, and the
    suite ``qa`` on the candidate (whose verdicts the tests store directly)."""
    rng = np.random.default_rng(0)
    rows = ["ts,x,pred,y"] + [f"2025-12-01T00:00:00Z,{rng.normal():.4f},1,1" for _ in range(200)]
    (tmp_path / "reference.csv").write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    model = 'adapter = "http"\nurl = "http://127.0.0.1:1/predict"\nprediction = "label"'
    (tmp_path / "monitor.toml").write_text(
        f"""
[store]
data_dir = "{data}"

[[models]]
name = "candidate"
role = "candidate"
{model}
registry = {{ kind = "mlflow", url = "{registry.url}", name = "{NAME}", alias = "challenger" }}

[[models]]
name = "plain"
{model}

[[models]]
name = "lost"
{model}
registry = {{ kind = "mlflow", url = "http://127.0.0.1:1", name = "{NAME}", alias = "x" }}

[[suites]]
name = "qa"
dataset = "qa.jsonl"
task = "classification"
expected = "label"
inputs = ["n"]
metrics = ["accuracy"]
models = ["candidate"]
"""
    )
    (tmp_path / "qa.jsonl").write_text('{"id": "1", "n": 1, "label": "odd"}\n')
    raw = {
        "server": {
            "port": 0,
            "tokens": [
                {"name": "feed", "token": WRITE_TOKEN, "scopes": ["read", "write"]},
                {"name": "canary", "token": READ_TOKEN, "scopes": ["read"]},
            ],
        },
        "store": {"data_dir": str(data)},
        "streams": [stream("prod"), stream("cand")],
    }
    running = Daemon(parse_config(raw, base_dir=tmp_path))
    started = asyncio.Event()
    serving = asyncio.create_task(running.serve(started=started))
    await asyncio.wait_for(started.wait(), timeout=deadline(30))
    registry.set_alias("champion", "1")
    try:
        yield Setup(
            f"http://127.0.0.1:{running.port}",
            tmp_path,
            running.config.store.effective_url,
            registry,
        )
    finally:
        running.request_stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=deadline(30))


def canary(setup: Setup, duration: str, *extra: str) -> MonitorProcess:
    return MonitorProcess(
        "canary",
        *("--remote", setup.url, "--stream-production", "prod", "--stream-candidate", "cand"),
        *("--duration", duration, "--interval", "0.2s"),
        *("--report-md", "canary.md", "--report-json", "canary.json", "--junit", "canary.xml"),
        *("-c", "monitor.toml", "--model", "candidate", "--suite", "qa"),
        *("--promote-alias", "champion", *extra),
        cwd=setup.root,
        env={**QUIET, "MONITOR_TOKEN": READ_TOKEN, "USER": "ci-bot"},
    )


def add_verdict(store_url: str, outcome: str) -> int:
    """A verdict of suite ``qa`` on ``candidate``, as the daemon's scheduled run gets."""
    store = Store(store_url)
    try:
        at = datetime.now(UTC)
        run = store.runs.create_run(
            suite="qa",
            model="candidate",
            trigger="schedule",
            dataset_sha256="d" * 64,
            config_hash="c",
            at=at,
            status=RunStatus.RUNNING,
        )
        store.runs.finish_run(run, status=RunStatus.SUCCEEDED, at=at, error=None, cases=[])
        return int(
            store.verdicts.add_verdict(
                run_id=run,
                baseline_run_id=run,
                suite="qa",
                model="candidate",
                outcome=outcome,
                reason=f"accuracy {outcome}",
                at=at,
                dataset_changed=False,
                metrics=[],
                changes=[],
            )
        )
    finally:
        store.close()


async def promotions(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ) as http:
        answer = await http.get("/v1/audit", params={"action": "registry.promoted"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["entries"])


async def watched(process: MonitorProcess, *steps: Any) -> int:
    """The canary's exit code after its first look and then ``steps`` (coroutines)."""
    pending = list(steps)
    try:
        await asyncio.to_thread(process.wait_for_line, FIRST_LOOK, timeout=30)
        while pending:
            await pending.pop(0)
        return await finished(process)
    finally:
        for step in pending:  # a failure before them: close, not "never awaited" later
            step.close()
        process.stop()


async def test_an_equal_candidate_is_promoted_with_the_canarys_evidence(setup: Setup) -> None:
    registry = setup.registry
    registry.set_alias("challenger", "3")
    process = canary(setup, f"{round(deadline(3))}s")
    code = await watched(
        process,
        asyncio.to_thread(add_verdict, setup.store_url, "pass"),
        feed(setup.url, [("prod", 0, 85), ("cand", 0, 85)]),
    )
    assert code == 0, process.output()
    report = json.loads((setup.root / "canary.json").read_text())
    assert report["outcome"] == "promote" and report["model_version"] == "3"
    [seen] = report["verdicts"]
    assert seen["outcome"] == "pass"
    assert "version `3`" in (setup.root / "canary.md").read_text()
    assert "canary cand (version 3) vs prod: promote" in process.output()
    assert f"promoted version 3 of registered model '{NAME}' to alias 'champion'" in (
        process.output()
    )
    assert registry.alias("champion") == "3" and registry.alias("challenger") == "3"
    tags = registry.monitor_tags("3")
    assert tags["monitor.canary.outcome"] == "promote"
    assert tags["monitor.canary.production_stream"] == "prod"
    assert tags["monitor.canary.candidate_stream"] == "cand"
    assert tags["monitor.canary.candidate_counts"] == "85/100"
    assert tags["monitor.canary.production_counts"] == "85/100"
    assert tags["monitor.canary.p_value"] == "1"
    assert tags["monitor.canary.suite"] == "qa"
    assert tags["monitor.canary.verdict_ids"] == str(seen["id"])
    assert tags["monitor.canary.started_at"] == report["started_at"].replace("Z", "+00:00")
    assert all(key.startswith("monitor.canary.") for key in tags)
    [entry] = await promotions(setup.url)
    assert entry["actor"] == "ci-bot" and entry["target"] == f"model version {NAME}/3"
    assert entry["details"]["alias"] == "champion"
    assert entry["details"]["verdict_ids"] == [seen["id"]]
    assert entry["details"]["tags"] == tags


async def test_a_worse_candidate_is_rolled_back_and_the_registry_untouched(
    setup: Setup,
) -> None:
    registry = setup.registry
    registry.set_alias("challenger", "2")
    process = canary(setup, "10m")
    code = await watched(process, feed(setup.url, [("prod", 0, 90), ("cand", 0, 60)]))
    assert code == 1, process.output()
    assert json.loads((setup.root / "canary.json").read_text())["outcome"] == "rollback"
    assert registry.alias("champion") == "1" and registry.monitor_tags("2") == {}
    assert "promoted" not in process.output()
    assert await promotions(setup.url) == []


async def test_a_regressed_verdict_rolls_back_at_once_and_the_registry_untouched(
    setup: Setup,
) -> None:
    registry = setup.registry
    registry.set_alias("challenger", "2")
    process = canary(setup, "10m")
    code = await watched(process, asyncio.to_thread(add_verdict, setup.store_url, "regressed"))
    assert code == 1, process.output()
    report = json.loads((setup.root / "canary.json").read_text())
    assert report["outcome"] == "rollback" and report["rolled_back_by"] is not None
    assert f"verdict {report['rolled_back_by']} of suite 'qa'" in report["reason"]
    assert registry.alias("champion") == "1" and registry.monitor_tags("2") == {}
    assert await promotions(setup.url) == []


async def test_an_alias_moved_during_the_watch_is_not_promoted(setup: Setup) -> None:
    registry = setup.registry
    registry.set_alias("challenger", "4")
    process = canary(setup, f"{round(deadline(3))}s")
    code = await watched(
        process,
        asyncio.to_thread(registry.set_alias, "challenger", "5"),
        feed(setup.url, [("prod", 0, 85), ("cand", 0, 85)]),
    )
    assert code == 3, process.output()
    assert "moved from version 4 to 5 during it" in process.output()
    assert "nothing was promoted" in process.output()
    assert registry.alias("champion") == "1"
    assert registry.monitor_tags("4") == {} and registry.monitor_tags("5") == {}
    assert await promotions(setup.url) == []


def monitor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "canary", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=deadline(60),
        env={**os.environ, **QUIET},
    )


STREAMS = ("--stream-production", "prod", "--stream-candidate", "cand", "--duration", "5s")

C, PROMOTE = ("-c", "monitor.toml"), ("--promote-alias", "champion")
USAGE = [
    pytest.param((*PROMOTE, *C), "needs --model", id="no-model"),
    pytest.param((*PROMOTE, "--model", "candidate"), "needs --model and -c", id="no-config"),
    pytest.param(("--suite", "qa"), "--suite needs --model", id="suite-no-model"),
    pytest.param(("--model", "candidate"), "--model needs -c CONFIG", id="model-no-config"),
    pytest.param(
        (*C, "--model", "candidate", "--promote-alias", "v3"),
        "MLflow reserves them",
        id="reserved-alias",
    ),
    pytest.param(
        (*C, "--model", "plain", *PROMOTE), "model 'plain' has no registry", id="no-registry"
    ),
    pytest.param(
        (*C, "--model", "nope", *PROMOTE), "no model 'nope' in the configuration", id="unknown"
    ),
    pytest.param(
        (*C, "--model", "plain", "--suite", "qaa"),
        "--suite: no suite 'qaa' in the configuration (defined: qa)",
        id="unknown-suite",
    ),
    pytest.param(
        (*C, "--model", "candidate", "--suite", "qa"),
        "suite 'qa' does not evaluate model 'candidate' (its models: plain)",
        id="suite-without-the-model",
    ),
]


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory, mlflow_url: str) -> Path:
    """monitor.toml as in ``setup`` with no daemon: these canaries never get to watch."""
    root = tmp_path_factory.mktemp("offline")
    model = 'adapter = "http"\nurl = "http://127.0.0.1:1/predict"\nprediction = "label"'
    (root / "monitor.toml").write_text(
        f'[store]\ndata_dir = "data"\n\n[[models]]\nname = "candidate"\n{model}\n'
        f'registry = {{ kind = "mlflow", url = "{mlflow_url}", name = "{NAME}", alias = "a" }}'
        f'\n\n[[models]]\nname = "plain"\n{model}\n\n[[models]]\nname = "lost"\n{model}\n'
        'registry = { kind = "mlflow", url = "http://127.0.0.1:1", name = "c", alias = "a" }\n'
        '\n[[suites]]\nname = "qa"\ndataset = "qa.jsonl"\ntask = "classification"\n'
        'expected = "label"\ninputs = ["n"]\nmetrics = ["accuracy"]\nmodels = ["plain"]\n'
    )
    (root / "qa.jsonl").write_text('{"id": "1", "n": 1, "label": "odd"}\n')
    return root


@pytest.mark.parametrize(("extra", "expected"), USAGE)
def test_usage_mistakes_exit_2_before_watching(
    offline: Path, extra: tuple[str, ...], expected: str
) -> None:
    done = monitor(offline, "--remote", "http://127.0.0.1:1", *STREAMS, *extra)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_an_unmigrated_store_or_an_unreachable_registry_is_exit_3_before_watching(
    offline: Path,
) -> None:
    args = ("--remote", "http://127.0.0.1:1", *STREAMS, "-c", "monitor.toml")
    # Nothing migrated the store under offline/data yet.
    unmigrated = monitor(offline, *args, "--model", "candidate", "--promote-alias", "champion")
    assert unmigrated.returncode == 3, unmigrated.stderr
    assert "monitor db upgrade" in unmigrated.stderr
    upgraded = subprocess.run(
        [sys.executable, "-m", "monitor", "db", "upgrade", "-c", "monitor.toml"],
        cwd=offline,
        capture_output=True,
        text=True,
        timeout=deadline(60),
    )
    assert upgraded.returncode == 0, upgraded.stderr
    lost = monitor(offline, *args, "--model", "lost", "--promote-alias", "champion")
    assert lost.returncode == 3, lost.stderr
    assert "cannot resolve the version of model 'lost'" in lost.stderr
    assert "MLflow registry at http://127.0.0.1:1 is unreachable" in lost.stderr
    # Neither got to the daemon (none answers there): no "canary ... s:" look.
    assert "s: candidate" not in lost.stderr + unmigrated.stderr
