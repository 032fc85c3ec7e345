"""Each adapter against a real loopback server speaking its protocol: what is sent, what
is read back, how batches are packed and fanned out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monitor.adapters import build_adapter
from monitor.errors import AdapterError
from tests.adapters.endpoints import Endpoint, proba
from tests.adapters.models import HEADER_SECRET, SECRET, case, expected_value, model_for

# Against real servers: once per HTTP client under the transport.
pytestmark = pytest.mark.usefixtures("http_client")

XS = [0.5, -1.0, 2.0, -0.25, 3.0, -4.0, 0.0, -7.5, 1.25, -0.1]


@pytest.mark.parametrize("adapter", ["http", "openai", "mlflow", "kserve-v2"])
async def test_every_case_gets_its_own_answer(endpoint: Endpoint, adapter: str) -> None:
    model = build_adapter(model_for(adapter, endpoint.url))
    try:
        predictions = await asyncio.gather(*(model.predict(case(i, x)) for i, x in enumerate(XS)))
    finally:
        await model.aclose()
    assert [p.value for p in predictions] == [expected_value(adapter, x) for x in XS]
    assert all(p.latency_seconds > 0 for p in predictions)
    assert all(r.headers["x-api-token"] == HEADER_SECRET for r in endpoint.requests)


async def test_http_reads_scores_by_jmespath(endpoint: Endpoint) -> None:
    model = build_adapter(model_for("http", endpoint.url, scores="proba.pos"))
    prediction = await model.predict(case(0, 2.0))
    await model.aclose()
    assert prediction.value == "pos" and prediction.scores == proba(2.0)


async def test_openai_chat_request_and_usage(endpoint: Endpoint) -> None:
    config = model_for(
        "openai",
        endpoint.url,
        system_prompt="You judge {{x}}.",
        temperature=0.3,
        seed=7,
        max_tokens=16,
        extra_body={"top_p": 0.9},
    )
    model = build_adapter(config)
    prediction = await model.predict(case(0, 1.5))
    await model.aclose()
    (request,) = endpoint.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.body == {
        "model": "toy",
        "messages": [
            {"role": "system", "content": "You judge 1.5."},
            {"role": "user", "content": "x is 1.5"},
        ],
        "temperature": 0.3,
        "seed": 7,
        "max_tokens": 16,
        "top_p": 0.9,
    }
    assert prediction.value == "X IS 1.5"
    assert (prediction.prompt_tokens, prediction.completion_tokens) == (3, 1)


async def test_openai_completions_endpoint(endpoint: Endpoint) -> None:
    model = build_adapter(model_for("openai", endpoint.url, endpoint="completions", api_key=None))
    prediction = await model.predict(case(0, 1))
    await model.aclose()
    (request,) = endpoint.requests
    assert request.path == "/v1/completions" and "authorization" not in request.headers
    assert request.body == {"model": "toy", "prompt": "x is 1", "temperature": 0.0}
    assert prediction.value == "1 si x"
    assert (prediction.prompt_tokens, prediction.completion_tokens) == (3, 2)


async def test_missing_template_field_is_a_bad_request_without_a_request(
    endpoint: Endpoint,
) -> None:
    model = build_adapter(model_for("openai", endpoint.url, prompt="{{question}}"))
    with pytest.raises(AdapterError) as info:
        await model.predict(case(0, 1))
    await model.aclose()
    assert info.value.kind == "bad_request" and "'question'" in str(info.value)
    assert endpoint.requests == []


@pytest.mark.parametrize(
    ("fmt", "columns", "expected_body"),
    [
        ("dataframe_split", ["x", "id"], {"dataframe_split": {"columns": ["x", "id"]}}),
        ("inputs", ["x"], {"inputs": None}),
        ("inputs", ["x", "id"], {"inputs": None}),
    ],
    ids=["dataframe-split", "inputs-single-column", "inputs-records"],
)
async def test_mlflow_batches_rows(
    endpoint: Endpoint, fmt: str, columns: list[str], expected_body: dict[str, Any]
) -> None:
    config = model_for("mlflow", endpoint.url, format=fmt, columns=columns, batch_size=4)
    model = build_adapter(config)
    cases = [case(i, x) for i, x in enumerate(XS)]
    for c in cases:
        c.inputs["id"] = c.id
    predictions = await asyncio.gather(*(model.predict(c) for c in cases))
    await model.aclose()
    assert [p.value["label"] for p in predictions] == [expected_value("http", x) for x in XS]
    assert [r.path for r in endpoint.requests] == ["/invocations"] * 3  # 4 + 4 + 2 rows
    bodies = [r.body for r in endpoint.requests]
    assert all(body.keys() == expected_body.keys() for body in bodies)
    rows = [[x, f"c{i}"] for i, x in enumerate(XS)]
    if fmt == "dataframe_split":
        sent = [body["dataframe_split"]["data"] for body in bodies]
        assert all(body["dataframe_split"]["columns"] == ["x", "id"] for body in bodies)
    elif len(columns) == 1:
        sent = [[[x, f"c{XS.index(x)}"] for x in body["inputs"]] for body in bodies]
    else:
        sent = [[[r["x"], r["id"]] for r in body["inputs"]] for body in bodies]
    # Batches go out concurrently, so their order varies; their contents do not.
    assert sorted(sent, key=str) == sorted([rows[:4], rows[4:8], rows[8:]], key=str)


async def test_mlflow_prediction_and_scores_paths(endpoint: Endpoint) -> None:
    config = model_for("mlflow", endpoint.url, prediction="label", scores="p", batch_size=2)
    model = build_adapter(config)
    predictions = await asyncio.gather(model.predict(case(0, 1.0)), model.predict(case(1, -2.0)))
    await model.aclose()
    assert [(p.value, p.scores) for p in predictions] == [
        ("pos", proba(1.0)),
        ("neg", proba(-2.0)),
    ]


async def test_mlflow_answer_count_mismatch_fails_that_batch_only(endpoint: Endpoint) -> None:
    model = build_adapter(model_for("mlflow", endpoint.url, batch_size=3))
    xs = [1.0, 999, -1.0, 2.0, -2.0, 3.0]  # 999 makes the server drop a row
    results = await asyncio.gather(
        *(model.predict(case(i, x)) for i, x in enumerate(xs)), return_exceptions=True
    )
    await model.aclose()
    assert all(isinstance(r, AdapterError) and r.kind == "bad_response" for r in results[:3])
    assert "2 predictions for a batch of 3 rows" in str(results[0])
    assert [r.value["label"] for r in results[3:]] == ["pos", "neg", "pos"]  # type: ignore[union-attr]


async def test_kserve_stacks_tensors_and_splits_outputs(endpoint: Endpoint) -> None:
    config = model_for("kserve-v2", endpoint.url, scores_output="proba", version="3")
    model = build_adapter(config)
    predictions = await asyncio.gather(*(model.predict(case(i, x)) for i, x in enumerate(XS)))
    await model.aclose()
    assert [r.path for r in endpoint.requests] == ["/v2/models/toy/versions/3/infer"] * 3
    tensors = [r.body["inputs"][0] for r in endpoint.requests]
    first = next(t for t in tensors if t["data"][0] == XS[0])  # batches race each other
    assert first == {
        "name": "x",
        "shape": [4, 2],
        "datatype": "FP32",
        "data": [v for x in XS[:4] for v in (x, 0.0)],
    }
    assert [p.value for p in predictions] == [expected_value("kserve-v2", x) for x in XS]
    assert predictions[2].scores == pytest.approx([1 - proba(2.0), proba(2.0)])


async def test_kserve_shape_from_config_is_checked(endpoint: Endpoint) -> None:
    inputs = [{"name": "x", "field": "features", "shape": [3]}]
    model = build_adapter(model_for("kserve-v2", endpoint.url, inputs=inputs))
    with pytest.raises(AdapterError) as info:
        await model.predict(case(0, 1.0))
    await model.aclose()
    assert info.value.kind == "bad_request" and "holds 2 values, shape [3] needs 3" in str(
        info.value
    )
    assert endpoint.requests == []


async def test_kserve_unknown_output_is_a_bad_response(endpoint: Endpoint) -> None:
    model = build_adapter(model_for("kserve-v2", endpoint.url, output="nope"))
    with pytest.raises(AdapterError) as info:
        await model.predict(case(0, 1.0))
    await model.aclose()
    assert info.value.kind == "bad_response" and "'nope'" in str(info.value)


async def test_concurrency_limit_holds_across_connection_pools(
    endpoint: Endpoint, http_client: str
) -> None:
    endpoint.script(*["slow:0.5"] * 40)
    model = build_adapter(model_for("http", endpoint.url, concurrency=20))
    try:
        await asyncio.gather(*(model.predict(case(i, 1)) for i in range(40)))
    finally:
        await model.aclose()
    # aiohttp pools every connection in one client; httpx's pools hold 2 each.
    assert len(model.transport.http.clients) == (1 if http_client == "aiohttp" else 10)
    assert endpoint.peak == 20
