"""The curl + jq script in docs/api.md, run as written against the daemon: it starts a
run, polls it to completion and compares ``f1-score`` with a threshold."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import WRITE_TOKEN, MakeConfig, ModelServer, running
from tests.servers import ROOT, deadline

pytestmark = pytest.mark.integration


def ci_script() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    match = re.search(r"<!-- ci-script -->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, "docs/api.md has no ci-script block"
    return match.group(1)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the CI script needs {', '.join(missing)} (.ci/run installs them)")
    path = tmp_path / "eval-gate.sh"
    path.write_text(ci_script())
    return path


async def run_script(script: Path, url: str, model: str, minimum: str) -> tuple[int, str]:
    env = {
        "PATH": os.environ["PATH"],
        "MONITOR_URL": url,
        "MONITOR_TOKEN": WRITE_TOKEN,
        "SUITE": "qa",
        "MODEL": model,
        "MIN_F1": minimum,
        "POLL_SECONDS": "0.1",
    }
    process = await asyncio.create_subprocess_exec(
        "bash", str(script), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=deadline(120))
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    ("model", "minimum", "code", "f1"),
    [
        pytest.param("prod", "0.9", 0, "1", id="good-model-passes"),
        pytest.param("weak", "0.9", 1, "0.5", id="weak-model-fails"),
        pytest.param("weak", "0.5", 0, "0.5", id="weak-model-at-threshold-passes"),
        pytest.param("down", "0.5", 2, None, id="failed-run-exits-2"),
    ],
)
async def test_ci_script_gates_on_f1(
    make_config: MakeConfig,
    model_server: ModelServer,
    script: Path,
    model: str,
    minimum: str,
    code: int,
    f1: str | None,
) -> None:
    weak = {
        "name": "weak",
        "adapter": "openai",
        "url": f"{model_server.url}/v1",
        "model": "meh",
        "prompt": "{{question}}",
    }
    down = weak | {"name": "down", "url": "http://127.0.0.1:9/v1", "retry": {"attempts": 0}}
    config = make_config(models=[weak, down])
    async with running(config) as (_, url):
        returncode, output = await run_script(script, url, model, minimum)
    assert returncode == code, output
    assert re.search(r"^run req-[0-9a-f]{32} queued$", output, re.MULTILINE), output
    if f1 is None:
        assert "failed" in output and "f1-score" not in output
    else:
        assert f"f1-score {f1} (minimum {minimum})" in output
