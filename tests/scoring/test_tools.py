"""Agent metrics: ``tool-name`` and ``tool-args`` on the answers the openai adapter keeps
(``tool_calls``), and the adapter keeping them (an ``httpx.MockTransport`` endpoint)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from monitor.adapters import build_adapter
from monitor.config import OpenAIModelConfig
from monitor.records import Case
from monitor.scoring import build_metric

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}


def answer(*calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    return {"content": content, "tool_calls": list(calls)}


@pytest.mark.parametrize(
    ("prediction", "expected", "name", "args"),
    [
        pytest.param(answer(WEATHER), WEATHER, 1.0, 1.0, id="same-call"),
        pytest.param(
            answer({"name": "get_weather", "arguments": '{"days": 3.0, "city": "Paris"}'}),
            WEATHER,
            1.0,
            1.0,
            id="json-text-reordered",
        ),
        pytest.param(
            answer({"name": "get_weather", "arguments": {"city": "Lyon", "days": 3}}),
            WEATHER,
            1.0,
            0.0,
            id="other-args",
        ),
        pytest.param(
            answer({"name": "search", "arguments": {}}), "get_weather", 0.0, 0.0, id="other-tool"
        ),
        pytest.param("It is sunny.", WEATHER, 0.0, 0.0, id="no-call"),
        pytest.param(
            answer(WEATHER, {"name": "book", "arguments": {}}),
            [WEATHER, {"name": "book"}],
            1.0,
            1.0,
            id="calls-in-order",
        ),
        pytest.param(
            answer({"name": "book", "arguments": {}}, WEATHER),
            [WEATHER, {"name": "book"}],
            0.0,
            0.0,
            id="calls-out-of-order",
        ),
    ],
)
def test_tool_name_and_args(prediction: Any, expected: Any, name: float, args: float) -> None:
    assert build_metric("tool-name").score_case(prediction, expected) == name
    assert build_metric("tool-args").score_case(prediction, expected) == args


def test_tool_args_against_a_schema() -> None:
    schema = {"type": "object", "required": ["city"], "properties": {"days": {"type": "integer"}}}
    metric = build_metric({"name": "tool-args", "schema": schema})
    assert metric.score_case(answer(WEATHER), None) == 1.0
    bad = {"name": "get_weather", "arguments": {"days": "three"}}
    assert metric.score_case(answer(bad), None) == 0.0
    assert metric.score_case("no call", None) == 0.0
    with pytest.raises(ValueError, match="option 'schema' of metric 'tool-args'"):
        build_metric({"name": "tool-args", "schema": {"type": "nonsense"}})


async def test_the_openai_adapter_keeps_tool_calls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": json.dumps(WEATHER["arguments"]),
                    },
                }
            ],
        }
        return httpx.Response(200, json={"choices": [{"message": message}]})

    config = OpenAIModelConfig.model_validate(
        {
            "name": "agent",
            "adapter": "openai",
            "url": "http://agent/v1",
            "model": "a",
            "http_client": "httpx",
        }
    )
    adapter = build_adapter(config, transport=httpx.MockTransport(handler))
    try:
        prediction = await adapter.predict(Case("1", {"input": "weather in Paris?"}, None))
    finally:
        await adapter.aclose()
    assert prediction.value == {"content": None, "tool_calls": [WEATHER]}
    assert build_metric("tool-args").score_case(prediction.value, WEATHER) == 1.0
