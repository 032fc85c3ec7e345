"""Judges in the configuration: a judge metric names a model with ``role = "judge"``, its
``prompt_file`` resolves against the config file; every error names the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import parse_config
from monitor.errors import ConfigError
from monitor.scoring.judged import JudgeMetric


def _config(tmp_path: Path, metric: dict[str, Any], role: str = "judge") -> dict[str, Any]:
    (tmp_path / "cases.jsonl").write_text('{"id": "1", "input": "q", "expected": "a"}\n')
    return {
        "models": [
            {"name": "m", "adapter": "http", "url": "http://127.0.0.1:1/p"},
            {
                "name": "gpt-judge",
                "adapter": "openai",
                "url": "http://127.0.0.1:1/v1",
                "model": "judge",
                "role": role,
            },
        ],
        "suites": [
            {
                "name": "s",
                "dataset": "cases.jsonl",
                "task": "text",
                "metrics": ["contains", metric],
                "models": ["m"],
            }
        ],
    }


def test_a_judge_metric_with_a_prompt_file_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "tone.txt").write_text("Is {{answer}} polite?", encoding="utf-8")
    metric = {
        "name": "rubric",
        "judge": "gpt-judge",
        "criterion": "polite",
        "prompt_file": "prompts/tone.txt",
    }
    suite = parse_config(_config(tmp_path, metric), base_dir=tmp_path).suites[0]
    judged = suite.build_metrics()[1]
    assert isinstance(judged, JudgeMetric)
    assert judged.judge == "gpt-judge"
    assert judged.prompt == "Is {{answer}} polite?"


@pytest.mark.parametrize(
    ("metric", "role", "message"),
    [
        pytest.param(
            {"name": "rubric", "judge": "gpt-judg", "criterion": "c"},
            "judge",
            "suites[0].metrics[1].judge: unknown model 'gpt-judg'; did you mean 'gpt-judge'?",
            id="unknown-judge",
        ),
        pytest.param(
            {"name": "faithfulness", "judge": "gpt-judge"},
            "production",
            "suites[0].metrics[1].judge: model 'gpt-judge' has role 'production';"
            ' a judge needs role = "judge"',
            id="not-a-judge",
        ),
        pytest.param(
            {"name": "faithfulness"},
            "judge",
            "suites[0].metrics[1]: metric 'faithfulness' needs a 'judge'",
            id="no-judge",
        ),
        pytest.param(
            {"name": "semantic-similarity", "embedder": "gpt-judge"},
            "judge",
            "suites[0].metrics[1].embedder: model 'gpt-judge' has role 'judge';"
            ' an embedder needs role = "embedder"',
            id="embedder-role",
        ),
        pytest.param(
            {"name": "rubric", "judge": "gpt-judge", "criterion": "c", "prompt_file": "no.txt"},
            "judge",
            "suites[0].metrics[1]: prompt_file: no readable file at",
            id="missing-prompt-file",
        ),
        pytest.param(
            {"name": "rubric", "judge": "gpt-judge", "criterion": "c", "scale": "1-7"},
            "judge",
            "suites[0].metrics[1]: option 'scale' of metric 'rubric'",
            id="bad-scale",
        ),
    ],
)
def test_judge_errors_name_the_key_path(
    tmp_path: Path, metric: dict[str, Any], role: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(tmp_path, metric, role), base_dir=tmp_path)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_two_rubrics_need_titles_to_be_told_apart(tmp_path: Path) -> None:
    raw = _config(tmp_path, {"name": "rubric", "judge": "gpt-judge", "criterion": "a"})
    raw["suites"][0]["metrics"].append({"name": "rubric", "judge": "gpt-judge", "criterion": "b"})
    with pytest.raises(ConfigError, match="metric 'rubric' is listed twice"):
        parse_config(raw, base_dir=tmp_path)
    raw["suites"][0]["metrics"][-1]["title"] = "b"
    labels = [m.label for m in parse_config(raw, base_dir=tmp_path).suites[0].build_metrics()]
    assert labels == ["contains", "rubric", "rubric:b"]
