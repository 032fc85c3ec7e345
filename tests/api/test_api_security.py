"""The API's guards through a real uvicorn server: tokens and scopes on every route, the
request-forgery guard on endpoints, 422 answers naming the field, and body size limits.
Nothing refused is stored, handed to the daemon, or sent to a model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from monitor.config import Config
from monitor.store import Store
from monitor.store.tables import run_requests
from tests.api.conftest import (
    READ,
    READ_TOKEN,
    WRITE,
    WRITE_TOKEN,
    MakeConfig,
    ModelServer,
    Recorder,
    served_app,
)
from tests.servers import deadline

GOOD = {"benchmarkId": "qa", "models": [{"id": "prod"}]}


def stored(store: Store) -> tuple[int, int]:
    """(runs, run requests) in the store."""
    with store.engine.connect() as connection:
        requests = connection.scalar(select(func.count()).select_from(run_requests))
    return len(store.runs.list_runs()), int(requests or 0)


@pytest.fixture
def api(make_config: MakeConfig, store: Store) -> Iterator[tuple[httpx.Client, Recorder]]:
    recorder = Recorder()
    with (
        served_app(make_config(), store, recorder) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        yield http, recorder


# -- tokens and scopes ---------------------------------------------------------------


def concrete(path: str) -> str:
    """A route's path with its parameters filled in."""
    return re.sub(r"\{[^}]+\}", lambda m: "qa" if "suite" in m.group(0) else "1", path)


def test_every_v1_route_needs_a_token(api: tuple[httpx.Client, Recorder]) -> None:
    http, _ = api
    paths = http.get("/openapi.json").json()["paths"]
    routes = [(m.upper(), concrete(p)) for p, ops in paths.items() for m in ops if "/v1/" in p]
    assert len(routes) >= 12
    for method, path in routes:
        anonymous = http.request(method, path)
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.headers["www-authenticate"] == "Bearer"
        unknown = http.request(method, path, headers={"Authorization": "Bearer x" * 3})
        assert unknown.status_code == 401 and unknown.json() == {"detail": "unknown token"}
        reader = http.request(method, path, headers=READ)
        if method == "GET":
            assert reader.status_code in (200, 404), (path, reader.text)
            assert http.get(path, headers=WRITE).status_code == reader.status_code  # implied
        else:
            assert reader.status_code == 403, (method, path)
            assert reader.json() == {"detail": "token 'viewer' lacks the 'write' scope"}
    for open_path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert http.get(open_path).status_code == 200, open_path


def test_no_tokens_reads_open_writes_refused(make_config: MakeConfig, store: Store) -> None:
    config = make_config(server={"tokens": []})
    with (
        served_app(config, store, Recorder()) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        assert http.get("/v1/runs").status_code == 200
        assert http.get("/v1/suites/qa/leaderboard").status_code == 200
        anonymous = http.post("/v1/runs", json=GOOD)
        guessed = http.post("/v1/runs", json=GOOD, headers=WRITE)
    assert anonymous.status_code == 401 and guessed.status_code == 401
    assert WRITE_TOKEN not in guessed.text
    assert stored(store) == (0, 0)


def test_write_token_posts_and_reads(api: tuple[httpx.Client, Recorder], store: Store) -> None:
    http, recorder = api
    posted = http.post("/v1/runs", json=GOOD, headers=WRITE)
    assert posted.status_code == 202 and posted.json()["status"] == "queued"
    request_id = posted.json()["runId"]
    answer = http.get(f"/v1/runs/{request_id}", headers=WRITE).json()
    assert answer["status"] == "queued" and answer["runs"][0]["status"] == "queued"
    assert answer["completedAt"] is None and answer["error"] is None
    run_request = store.runs.get_run_request(request_id)
    assert run_request is not None and run_request.requested_by == "ci"
    assert READ_TOKEN not in json.dumps(run_request.models) + str(run_request)
    ((suite, handed),) = recorder.handed
    assert suite.name == "qa" and [(m.name, run) for m, run in handed] == [
        ("prod", answer["runs"][0]["run"])
    ]


# -- request forgery -----------------------------------------------------------------


def test_allowed_endpoint_is_queued_normalised(
    api: tuple[httpx.Client, Recorder], store: Store, model_server: ModelServer
) -> None:
    http, recorder = api
    endpoint = f"{model_server.url}/v1/../v1/"
    body = {"benchmarkId": "qa", "models": [{"id": "meta/llama-3", "endpoint": endpoint}]}
    posted = http.post("/v1/runs", json=body, headers=WRITE)
    assert posted.status_code == 202, posted.text
    ((_, [(model, run_id)]),) = recorder.handed
    assert model.adapter == "openai" and model.name == "meta-llama-3"
    assert model.url == f"{model_server.url}/v1/" and model.model == "meta/llama-3"
    # The configured model's prompt applies; its API key never goes to another endpoint.
    assert model.prompt == "{{question}}" and model.api_key is None and model.headers == {}
    run_request = store.runs.get_run_request(posted.json()["runId"])
    assert run_request is not None
    assert run_request.models == (
        {"id": "meta/llama-3", "model": "meta-llama-3", "endpoint": f"{model_server.url}/v1/"},
    )
    assert [r.id for r in run_request.runs] == [run_id]
    status = http.get(f"/v1/runs/{posted.json()['runId']}", headers=READ).json()
    assert status["runs"][0]["model"] == "meta/llama-3"
    assert model_server.paths == []  # queued with the stand-in: nothing was called


REFUSED = [
    pytest.param("http://127.0.0.1.nip.io:{port}/v1", "not under any", id="lookalike-host"),
    pytest.param("http://127.0.0.1:{other}/v1", "not under any", id="wrong-port"),
    pytest.param("http://localhost:{port}/v1", "not under any", id="other-name"),
    pytest.param("https://127.0.0.1:{port}/v1", "not under any", id="other-scheme"),
    pytest.param("{base}/v1beta", "not under any", id="path-lookalike"),
    pytest.param("{base}/v1/../admin", "not under any", id="dot-segments-out"),
    pytest.param("{base}/v1/%2e%2e/admin", "encoded dots", id="encoded-dots"),
    pytest.param("http://u:pw@127.0.0.1:{port}/v1", "credentials", id="credentials"),
    pytest.param("{base}\\@evil.test/v1", "credentials", id="backslash-trick"),
    pytest.param("{base}/v1?target=evil", "query", id="query"),
    pytest.param("file:///etc/passwd", "http:// or https://", id="file-scheme"),
    pytest.param("not a url at all", "http:// or https://", id="not-a-url"),
]


@pytest.mark.parametrize(("template", "fragment"), REFUSED)
def test_refused_endpoints_name_the_field(
    api: tuple[httpx.Client, Recorder],
    store: Store,
    model_server: ModelServer,
    template: str,
    fragment: str,
) -> None:
    http, recorder = api
    port = int(model_server.url.rsplit(":", 1)[1])
    endpoint = template.format(port=port, other=port + 1, base=model_server.url)
    body = {
        "benchmarkId": "qa",
        "models": [{"id": "prod"}, {"id": "adhoc", "endpoint": endpoint}],
    }
    answer = http.post("/v1/runs", json=body, headers=WRITE)
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["field"] == "models[1].endpoint" and fragment in problem["msg"]
    assert problem["msg"].startswith("models[1].endpoint: ")
    assert "pw@" not in answer.text and "evil" not in answer.text  # the URL is not echoed
    assert stored(store) == (0, 0) and recorder.handed == [] and model_server.paths == []


def test_prefix_examples_from_the_docs(make_config: MakeConfig, store: Store) -> None:
    prefixes = ["http://good.example.com", "http://127.0.0.1:80"]
    config = make_config(server={"allowed_endpoint_prefixes": prefixes})
    recorder = Recorder()
    outcomes = {}
    with (
        served_app(config, store, recorder) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        for endpoint in [
            "http://good.example.com/v1",
            "http://good.example.com.evil.net/v1",
            "http://127.0.0.1/v1",
            "http://127.0.0.1:8000/v1",
        ]:
            body = {"benchmarkId": "qa", "models": [{"id": "m", "endpoint": endpoint}]}
            outcomes[endpoint] = http.post("/v1/runs", json=body, headers=WRITE).status_code
    assert outcomes == {
        "http://good.example.com/v1": 202,
        "http://good.example.com.evil.net/v1": 422,
        "http://127.0.0.1/v1": 202,
        "http://127.0.0.1:8000/v1": 422,
    }
    assert len(recorder.handed) == 2


def test_no_prefixes_no_endpoints(
    make_config: MakeConfig, store: Store, model_server: ModelServer
) -> None:
    config = make_config(server={"allowed_endpoint_prefixes": []})
    override = {"benchmarkId": "qa", "models": [{"id": "prod", "endpoint": model_server.url}]}
    with (
        served_app(config, store, Recorder()) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        answer = http.post("/v1/runs", json=override, headers=WRITE)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == (
        "models[0].endpoint: ad-hoc endpoints are not accepted: "
        "server.allowed_endpoint_prefixes is empty"
    )
    assert stored(store) == (0, 0)


# -- malformed bodies ----------------------------------------------------------------

MALFORMED = [
    pytest.param({"models": [{"id": "prod"}]}, "benchmarkId", "Field required", id="no-benchmark"),
    pytest.param({"benchmarkId": "qa", "models": "prod"}, "models", "valid array", id="not-a-list"),
    pytest.param({"benchmarkId": "qa", "models": []}, "models", "at least 1", id="no-models"),
    pytest.param(
        {"benchmarkId": "qa", "models": [{"endpoint": "http://x"}]},
        "models[0].id",
        "Field required",
        id="model-without-id",
    ),
    pytest.param(
        {"benchmarkId": "nope", "models": [{"id": "prod"}]},
        "benchmarkId",
        "unknown benchmark 'nope' (configured suites: qa)",
        id="unknown-suite",
    ),
    pytest.param(
        {"benchmarkId": "qa", "models": [{"id": "prod"}, {"id": "ghost"}]},
        "models[1].id",
        "unknown model 'ghost': not in the configuration, and no endpoint given",
        id="unknown-model",
    ),
    pytest.param(
        {"benchmarkId": "qa", "models": [{"id": "prod"}, {"id": "prod"}]},
        "models[1].id",
        "list each model once",
        id="model-twice",
    ),
    pytest.param({**GOOD, "sample": 0}, "sample", "greater than or equal to 1", id="sample-0"),
    pytest.param({**GOOD, "baseline": "yesterday"}, "baseline", "a run id", id="bad-baseline"),
    pytest.param({**GOOD, "baseline": "4242"}, "baseline", "run 4242 not found", id="no-run"),
    pytest.param({**GOOD, "benchmark": "qa"}, "benchmark", "Extra inputs", id="unknown-key"),
    pytest.param(b'{"benchmarkId": "qa", ', "body", "JSON", id="invalid-json"),
    pytest.param(b"", "body", "JSON", id="empty-body"),
]


@pytest.mark.parametrize(("body", "field", "message"), MALFORMED)
def test_malformed_bodies_name_the_field(
    api: tuple[httpx.Client, Recorder], store: Store, body: Any, field: str, message: str
) -> None:
    http, recorder = api
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = http.post("/v1/runs", content=content, headers=WRITE)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["detail"]
    assert problems[0]["field"] == field
    assert problems[0]["msg"].startswith(f"{field}: ") and message in problems[0]["msg"]
    assert all(set(p) == {"loc", "field", "msg", "type"} for p in problems)  # no echo
    assert stored(store) == (0, 0) and recorder.handed == []


def test_query_problems_name_the_parameter(api: tuple[httpx.Client, Recorder]) -> None:
    http, _ = api
    answer = http.get("/v1/runs", params={"status": "weird", "limit": 0}, headers=READ)
    assert answer.status_code == 422
    assert {p["field"] for p in answer.json()["detail"]} == {"status", "limit"}


def test_malformed_body_without_a_token_is_401(api: tuple[httpx.Client, Recorder]) -> None:
    http, _ = api
    assert http.post("/v1/runs", content=b"{not json").status_code == 401
    assert http.post("/v1/runs", content=b"{not json", headers=READ).status_code == 403


# -- body size -----------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid request body of exactly ``size`` bytes (whitespace padding)."""
    body = json.dumps(GOOD).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.fixture
def small(make_config: MakeConfig, store: Store) -> Iterator[tuple[httpx.Client, Recorder]]:
    config: Config = make_config(server={"max_body_bytes": 2048})
    recorder = Recorder()
    with (
        served_app(config, store, recorder) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        yield http, recorder


def chunks(body: bytes, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_body_limits(small: tuple[httpx.Client, Recorder], store: Store) -> None:
    http, recorder = small
    at_limit = http.post("/v1/runs", content=padded(2048), headers=WRITE)
    assert at_limit.status_code == 202, at_limit.text
    declared = http.post("/v1/runs", content=padded(2049), headers=WRITE)
    assert declared.status_code == 413
    assert declared.json() == {"detail": "the request body is over 2048 bytes"}
    # Refused on Content-Length alone: before the token is even looked at.
    assert http.post("/v1/runs", content=padded(4096)).status_code == 413
    streamed = http.post("/v1/runs", content=chunks(padded(4096)), headers=WRITE)
    assert streamed.status_code == 413
    assert streamed.json() == {"detail": "the request body is over 2048 bytes"}
    small_chunks = http.post("/v1/runs", content=chunks(padded(1500)), headers=WRITE)
    assert small_chunks.status_code == 202, small_chunks.text
    assert stored(store) == (2, 2) and len(recorder.handed) == 2


def test_open_reads_leave_writes_guarded(make_config: MakeConfig, store: Store) -> None:
    config = make_config(server={"open_reads": True})
    with served_app(config, store) as url, httpx.Client(base_url=url, timeout=deadline(30)) as http:
        assert http.get("/v1/runs").status_code == 200
        assert http.get("/v1/verdicts").status_code == 200
        assert http.post("/v1/runs", json=GOOD).status_code == 401
        assert http.post("/v1/runs", json=GOOD, headers=READ).status_code == 403
