"""An agent suite end to end: a loopback OpenAI-compatible agent answers with
``tool_calls``, the ``openai`` adapter keeps them, the runner scores ``tool-name``,
``tool-args`` (JSON equality) and ``tool-args`` against a JSON schema, and the store keeps
the calls as the prediction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import OpenAIModelConfig, SuiteConfig
from monitor.records import RunStatus
from monitor.runs.runner import Runner
from monitor.store import Store
from tests.judge_server import running_agent

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
SCHEMA = {
    "type": "object",
    "required": ["city"],
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "additionalProperties": False,
}


def weather(city: str) -> dict[str, Any]:
    return {"name": "get_weather", "arguments": {"city": city, "unit": "celsius"}}


# id, what the user asks, the expected calls, and the scores: tool-name, tool-args,
# tool-args against SCHEMA.
CASES: list[tuple[str, str, Any, tuple[float, float, float]]] = [
    ("paris", "weather in Paris", weather("Paris"), (1, 1, 1)),
    ("wrong-city", "weather in Bergen", weather("Oslo"), (1, 0, 1)),
    ("wrong-tool", "search cats", weather("Paris"), (0, 0, 0)),
    ("no-call", "hello there", weather("Paris"), (0, 0, 0)),
    ("not-json", "broken Paris", weather("Paris"), (1, 0, 0)),
    (
        "two-calls",
        "weather then search Rome",
        [weather("Rome"), {"name": "search", "arguments": {"query": "Rome"}}],
        (1, 1, 0),
    ),
    ("names-only", "weather then search Rome", ["get_weather", "search"], (1, 0, 0)),
]
METRICS = ["tool-name", "tool-args", "tool-args[schema=custom]"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


async def test_an_agent_suite_scores_the_tool_calls_the_adapter_keeps(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "agent.jsonl"
    rows = [{"id": i, "input": text, "expected": calls} for i, text, calls, _ in CASES]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = SuiteConfig.model_validate(
        {
            "name": "agent",
            "dataset": str(path),
            "task": "text",
            "metrics": [
                "tool-name",
                "tool-args",
                {"name": "tool-args", "schema": SCHEMA},
            ],
            "models": ["agent"],
        }
    )
    with running_agent() as (url, requests):
        model = OpenAIModelConfig.model_validate(
            {
                "name": "agent",
                "adapter": "openai",
                "url": url,
                "model": "agent-1",
                "extra_body": {"tools": TOOLS, "tool_choice": "auto"},
            }
        )
        runner = Runner(store, clock=lambda: NOW, models=[model])
        try:
            result = await runner.run(suite, model)
        finally:
            await runner.aclose()
    assert result.status is RunStatus.SUCCEEDED, result.error
    assert len(requests) == len(CASES)
    assert all(r["tools"] == TOOLS and r["tool_choice"] == "auto" for r in requests)

    stored = {c.case_id: c for c in store.runs.list_cases(result.id, limit=None)}
    for case_id, _, _, expected_scores in CASES:
        scores = tuple(stored[case_id].scores[m] for m in METRICS)
        assert scores == expected_scores, case_id
    assert stored["paris"].prediction == {
        "content": None,
        "tool_calls": [{"name": "get_weather", "arguments": {"unit": "celsius", "city": "Paris"}}],
    }
    # Arguments that are not JSON are kept as their text: tool-args cannot match them.
    assert stored["not-json"].prediction["tool_calls"] == [
        {"name": "get_weather", "arguments": "city=Paris"}
    ]
    assert stored["no-call"].prediction == "Hello!"
    assert [c["name"] for c in stored["two-calls"].prediction["tool_calls"]] == [
        "get_weather",
        "search",
    ]
    metrics = {m.name: m for m in result.metrics}
    for k, name in enumerate(METRICS):
        mean = sum(s[k] for *_, s in CASES) / len(CASES)
        assert metrics[name].value == pytest.approx(mean)
        assert metrics[name].n == len(CASES)
    assert result.operations is not None and result.operations.prompt_tokens == 10 * len(CASES)
