"""The ``http`` adapter reads the usage a JSON API reports (``prompt_tokens`` and
``completion_tokens`` JMESPaths), so its runs have tokens and a cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.adapters import build_adapter
from monitor.config import load_config
from monitor.errors import ConfigError
from tests.adapters.models import case, model_for

USAGE = {"prompt_tokens": "usage.input", "completion_tokens": "usage.output"}
SUITE = """
[[suites]]
name = "s"
dataset = "data.jsonl"
task = "classification"
expected = "label"
metrics = ["accuracy"]
models = ["m"]
"""


async def predict(answer: Any, **config: Any) -> tuple[int | None, int | None]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    model = model_for("http", "http://model.test", **config)
    adapter = build_adapter(model, transport=httpx.MockTransport(handler))
    try:
        prediction = await adapter.predict(case(0, 1.0))
    finally:
        await adapter.aclose()
    assert prediction.value == "pos"
    return prediction.prompt_tokens, prediction.completion_tokens


async def test_usage_is_read_where_the_config_points() -> None:
    answer = {"prediction": "pos", "usage": {"input": 13, "output": 1}}
    assert await predict(answer, **USAGE) == (13, 1)


@pytest.mark.parametrize(
    "usage",
    [None, {"input": 13}, {"input": -1, "output": 1}, {"input": True, "output": 1}, "13"],
    ids=["absent", "half", "negative", "bool", "not-an-object"],
)
async def test_usage_the_answer_does_not_report_is_unknown(usage: Any) -> None:
    prompt, completion = await predict({"prediction": "pos", "usage": usage}, **USAGE)
    assert None in (prompt, completion)


async def test_without_usage_paths_tokens_are_unknown() -> None:
    answer = {"prediction": "pos", "usage": {"input": 13, "output": 1}}
    assert await predict(answer) == (None, None)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            'prompt_tokens = "usage.input"',
            "models[0]: prompt_tokens and completion_tokens go together",
        ),
        (
            'prompt_tokens = "usage.["\ncompletion_tokens = "usage.output"',
            "models[0].prompt_tokens: invalid JMESPath expression",
        ),
    ],
    ids=["half-a-pair", "bad-jmespath"],
)
def test_usage_paths_are_checked_at_load(tmp_path: Path, keys: str, expected: str) -> None:
    (tmp_path / "data.jsonl").write_text('{"id": 1, "x": 1, "label": "a"}\n')
    path = tmp_path / "config.toml"
    model = '[[models]]\nname = "m"\nadapter = "http"\nurl = "http://127.0.0.1:8000/predict"\n'
    path.write_text(model + keys + "\n" + SUITE)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
