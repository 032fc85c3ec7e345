"""The generic JSON adapter against httpx.MockTransport: templates, paths, error kinds."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from monitor.adapters import build_adapter
from monitor.adapters.http import render
from monitor.config import HttpModelConfig
from monitor.errors import AdapterError
from monitor.records import Case

SECRET = "sk-very-secret"


def model(**overrides: Any) -> HttpModelConfig:
    fields = {
        "name": "m",
        "adapter": "http",
        "url": "http://model.test/v1/predict?key=querysecret",
        "headers": {"Authorization": f"Bearer {SECRET}"},
        "body": {"inputs": {"x": "{{features}}", "note": "id {{id}}"}},
        "prediction": "outputs[0].label",
        **overrides,
    }
    return HttpModelConfig.model_validate(fields)


CASE = Case("c1", {"features": [1.5, 2], "id": 7}, "a")


def test_render_keeps_json_types_and_interpolates_text() -> None:
    assert render({"a": "{{x}}", "b": ["{{ y }}", "n={{y}}"], "c": 3}, {"x": [1, 2], "y": 5}) == {
        "a": [1, 2],
        "b": [5, "n=5"],
        "c": 3,
    }
    with pytest.raises(KeyError):
        render("{{missing}}", {})


async def test_request_is_templated_and_prediction_extracted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"outputs": [{"label": "b"}]})

    adapter = build_adapter(model(), transport=httpx.MockTransport(handler))
    prediction = await adapter.predict(CASE)
    await adapter.aclose()
    assert prediction.value == "b" and prediction.latency_seconds >= 0
    assert json.loads(seen[0].content) == {"inputs": {"x": [1.5, 2], "note": "id 7"}}
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"


def raise_(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (raise_(httpx.ReadTimeout("slow")), "timeout"),
        (raise_(httpx.ConnectError(f"refused {SECRET}")), "connection"),
        (lambda r: httpx.Response(503, text=SECRET), "http_status"),
        (lambda r: httpx.Response(200, text="not json"), "bad_response"),
        (lambda r: httpx.Response(200, json={"outputs": []}), "bad_response"),
    ],
    ids=["timeout", "connection", "http-503", "not-json", "missing-path"],
)
async def test_failures_have_kinds_and_no_secrets(
    handler: Callable[[httpx.Request], httpx.Response], kind: str
) -> None:
    adapter = build_adapter(model(), transport=httpx.MockTransport(handler))
    with pytest.raises(AdapterError) as info:
        await adapter.predict(CASE)
    await adapter.aclose()
    assert info.value.kind == kind
    assert SECRET not in str(info.value) and "querysecret" not in str(info.value)
    assert "http://model.test/v1/predict" in str(info.value) or kind == "bad_response"


async def test_missing_template_field_is_a_bad_request() -> None:
    adapter = build_adapter(
        model(body={"x": "{{nope}}"}), transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    with pytest.raises(AdapterError) as info:
        await adapter.predict(CASE)
    await adapter.aclose()
    assert info.value.kind == "bad_request" and "'nope'" in str(info.value)


async def test_get_sends_templated_params_and_no_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"prediction": 1})

    config = model(
        method="GET", url="http://model.test/p", params={"q": "{{id}}"}, prediction="prediction"
    )
    adapter = build_adapter(config, transport=httpx.MockTransport(handler))
    assert (await adapter.predict(CASE)).value == 1
    await adapter.aclose()
    assert seen[0].url.params["q"] == "7" and seen[0].content == b""


async def test_concurrency_limit_is_respected() -> None:
    import asyncio

    active, peak = 0, 0
    gate = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if peak >= 3:
            gate.set()
        await asyncio.wait_for(gate.wait(), 5)
        active -= 1
        return httpx.Response(200, json={"outputs": [{"label": "a"}]})

    adapter = build_adapter(model(concurrency=3), transport=httpx.MockTransport(handler))
    await asyncio.gather(*(adapter.predict(CASE) for _ in range(12)))
    await adapter.aclose()
    assert peak == 3
