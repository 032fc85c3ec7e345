"""The CI scripts in docs/api.md, run as written against the daemon with real curl, jq
and bc: each starts a run, polls it to completion and compares ``f1-score`` (0-100 in the
compatible API) with a threshold. One is ours; the other is a step written for the
benchmarking service, with its fixed ``BASELINE_F1_SCORE=91.2``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from tests.api.conftest import WRITE_TOKEN, MakeConfig, ModelServer, running
from tests.servers import ROOT, deadline, serve_in_thread

pytestmark = pytest.mark.integration


def ci_script(marker: str = "ci-script") -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/api.md has no {marker} block"
    return match.group(1)


def script_file(tmp_path: Path, marker: str, tools: tuple[str, ...]) -> Path:
    missing = [tool for tool in ("bash", *tools) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the CI script needs {', '.join(missing)} (.ci/run installs them)")
    path = tmp_path / f"{marker}.sh"
    path.write_text(ci_script(marker))
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    return script_file(tmp_path, "ci-script", ("curl", "jq"))


async def run_script(script: Path, url: str, model: str, minimum: str) -> tuple[int, str]:
    env = {
        "MONITOR_URL": url,
        "MONITOR_TOKEN": WRITE_TOKEN,
        "SUITE": "qa",
        "MODEL": model,
        "MIN_F1": minimum,
    }
    return await run_bash(script, env)


async def run_bash(script: Path, variables: Mapping[str, str]) -> tuple[int, str]:
    env = {"PATH": os.environ["PATH"], "POLL_SECONDS": "0.1", **variables}
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
        pytest.param("prod", "90", 0, "100", id="good-model-passes"),
        pytest.param("weak", "90", 1, "50", id="weak-model-fails"),
        pytest.param("weak", "50", 0, "50", id="weak-model-at-threshold-passes"),
        pytest.param("down", "50", 2, None, id="failed-run-exits-2"),
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


GOLD = [" ".join(f"w{case}x{token}" for token in range(10)) for case in range(50)]
"""50 questions, each with a gold answer of 10 distinct tokens."""


def answers(right: int, partial: int) -> list[str]:
    """``right`` answers exactly right (F1 1), one answer with ``partial`` of the 10 gold
    tokens and 10 tokens in all (F1 ``partial / 10``), the rest wrong (F1 0)."""
    texts = GOLD[:right]
    tokens = GOLD[right].split()[:partial] + [f"other{t}" for t in range(10 - partial)]
    texts.append(" ".join(tokens))
    return texts + ["no idea"] * (len(GOLD) - right - 1)


ANSWERS = {"strong": answers(46, 7), "weaker": answers(33, 1)}
"""SQuAD F1 x 100: strong (46 + 0.7) / 50 = 93.4, weaker (33 + 0.1) / 50 = 66.2."""


@pytest.fixture
def qa_server() -> Iterator[str]:
    """An OpenAI-compatible model server answering question ``q{i}`` with
    ``ANSWERS[model][i]``."""
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        case = int(body["messages"][-1]["content"][1:])
        text = ANSWERS[body["model"]][case]
        return {
            "choices": [{"message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }

    with serve_in_thread(app) as url:
        yield url


@pytest.mark.parametrize(
    ("model", "code", "f1", "verdict"),
    [
        pytest.param("strong", 0, "93.4", "at least the baseline 91.2", id="f1-93.4-passes"),
        pytest.param("weaker", 1, "66.2", "Regression: F1 66.2", id="f1-66.2-fails"),
    ],
)
async def test_service_script_gates_on_a_0_to_100_f1(
    make_config: MakeConfig,
    tmp_path: Path,
    qa_server: str,
    model: str,
    code: int,
    f1: str,
    verdict: str,
) -> None:
    script = script_file(tmp_path, "service-ci-script", ("curl", "jq", "bc"))
    dataset = tmp_path / "squad-50.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "question": f"q{i}", "answer": gold}) + "\n"
            for i, gold in enumerate(GOLD)
        )
    )
    served = {"adapter": "openai", "url": f"{qa_server}/v1", "prompt": "{{question}}"}
    config = make_config(
        suite={"dataset": str(dataset), "models": ["strong", "weaker"]},
        models=[served | {"name": name, "model": name} for name in ANSWERS],
    )
    async with running(config) as (_, url):
        env = {"EVAL_API": url, "EVAL_TOKEN": WRITE_TOKEN, "BENCHMARK": "qa", "MODEL_ID": model}
        returncode, output = await run_bash(script, env)
    assert returncode == code, output
    assert f"New Model F1 Score: {f1}\n" in output
    assert verdict in output
