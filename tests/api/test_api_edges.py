"""Hostile input at the API's edge: numbers past what the store holds, unicode digits,
NUL bytes, JSON nested a thousand deep, lone surrogates and 401-digit integers are each
a 422 naming what is wrong, on SQLite and on PostgreSQL (whose ``INTEGER`` is 32-bit),
never a 500. Every answer says ``nosniff``, and a 500 leaves a keep-alive connection
open. All against the real app on a real uvicorn server."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.api.guard import INTERNAL_ERROR
from monitor.config.server import TokenConfig
from monitor.store import Store
from tests.api.conftest import READ_TOKEN, WRITE_TOKEN
from tests.servers import deadline, serve_in_thread
from tests.store.conftest import BACKENDS, _postgres_schema_url

TOKENS = [
    TokenConfig(name="ci", token=WRITE_TOKEN, scopes=["write"]),
    TokenConfig(name="viewer", token=READ_TOKEN, scopes=["read"]),
]
AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
HUGE = "9" * 401


def _app(store: Store) -> FastAPI:
    app = create_app(store, CollectorRegistry(), version=__version__, tokens=TOKENS)

    async def boom() -> None:
        raise RuntimeError("a bug in a route")

    async def declared(body: dict[str, Any]) -> dict[str, Any]:
        return body

    app.add_api_route("/boom", boom, include_in_schema=False)
    # A route whose body FastAPI parses (as a route added by other code may).
    app.add_api_route("/declared", declared, methods=["POST"], include_in_schema=False)
    return app


@pytest.fixture(scope="module", params=BACKENDS)
def edge_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One migrated store per backend for the whole module: these tests store nothing."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('edges') / 'm.db'}"])
    else:
        urls = _postgres_schema_url()
    store = Store(next(urls))
    store.upgrade()
    yield store
    store.close()
    next(urls, None)  # drops the PostgreSQL schema


@pytest.fixture(scope="module")
def served(edge_store: Store) -> Iterator[str]:
    with serve_in_thread(_app(edge_store)) as url:
        yield url


@pytest.fixture
def http(served: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served, headers=AUTH, timeout=deadline(10)) as client:
        yield client


OUT_OF_RANGE = [
    pytest.param("/v1/runs/2147483648/cases", "run_id", id="cases-run-id"),
    pytest.param("/v1/runs/1/cases?offset=99999999999999999999", "offset", id="offset"),
    pytest.param("/v1/runs/1/cases?offset=-1", "offset", id="negative-offset"),
    pytest.param("/v1/runs?before=2147483648", "before", id="runs-before"),
    pytest.param(f"/v1/runs?before={HUGE}", "before", id="runs-before-401-digits"),
    pytest.param("/v1/runs?limit=0", "limit", id="runs-limit"),
    pytest.param("/v1/verdicts?before=2147483648", "before", id="verdicts-before"),
    pytest.param("/v1/verdicts/2147483648", "verdict_id", id="verdict-id"),
    pytest.param("/v1/verdicts/0", "verdict_id", id="verdict-id-zero"),
    pytest.param("/v1/baselines/2147483648", "baseline_id", id="baseline-id"),
    pytest.param("/v1/runs/2147483648/verdict", "run_id", id="run-verdict"),
    pytest.param("/v1/runs/2147483648/report", "run_id", id="run-report"),
    pytest.param("/v1/runs/1/report?baseline=%C2%B3", "baseline", id="report-baseline-unicode"),
    pytest.param("/v1/drift/2147483648", "report_id", id="drift-id"),
    pytest.param("/v1/drift/2147483648/report.html", "report_id", id="drift-html-id"),
    pytest.param("/v1/alerts?history=1001", "history", id="alert-history"),
    pytest.param("/v1/runs/%C2%B3", "run_id", id="unicode-superscript-digit"),
    pytest.param("/v1/runs/%D9%A3/results", "run_id", id="unicode-arabic-digit"),
    pytest.param("/v1/runs?suite=a%00b", "suite", id="nul-in-filter"),
    pytest.param("/v1/verdicts?model=%1B%5B31m", "model", id="escape-in-filter"),
    pytest.param("/v1/runs/req-%00", "run_id", id="nul-in-request-id"),
]


@pytest.mark.parametrize(("path", "field"), OUT_OF_RANGE)
def test_hostile_parameters_are_422_naming_the_parameter(
    http: httpx.Client, path: str, field: str
) -> None:
    answer = http.get(path)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["detail"]
    assert [p["field"] for p in problems] == [field]
    assert problems[0]["msg"].startswith(f"{field}: ")
    assert HUGE not in answer.text  # the input is not echoed


def test_the_largest_id_is_looked_up(http: httpx.Client) -> None:
    """The bound is what the store holds, not less: 2**31-1 is asked, and not found."""
    for path in ("/v1/runs/2147483647", "/v1/verdicts/2147483647", "/v1/drift/2147483647"):
        assert http.get(path).status_code == 404, path
    assert http.get("/v1/runs?before=2147483647").json() == {"runs": [], "next_before": None}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/runs/2147483648", id="past-int32"),
        pytest.param(f"/v1/runs/{'9' * 64}", id="64-digits"),
        pytest.param("/v1/runs/0000", id="zero"),
        pytest.param(f"/v1/runs/{'9' * 64}/results", id="results-64-digits"),
    ],
)
def test_a_run_number_no_run_can_have_is_not_found(http: httpx.Client, path: str) -> None:
    """``/v1/runs/{run_id}`` takes run and request ids as one string: a number past what
    the store holds is a run that does not exist, answered without asking the store."""
    answer = http.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"].startswith("run ")


def test_a_baseline_number_no_run_can_have_is_not_found(http: httpx.Client) -> None:
    answer = http.get("/v1/runs/1/report?baseline=2147483648")
    assert answer.status_code == 409, answer.text
    assert answer.json() == {"detail": "baseline run 2147483648 not found"}


HOSTILE_BODIES = [
    pytest.param(f'{{"run_id": {HUGE}}}', "run_id", "less than or equal to", id="401-digits"),
    pytest.param('{"run_id": 2147483648}', "run_id", "less than or equal to", id="past-int32"),
    pytest.param('{"run_id": %s}' % ("9" * 5000), "body", "number out of range", id="5000-digits"),
    pytest.param("[" * 1000 + "]" * 1000, "body", "recursion limit exceeded", id="nested-1000"),
    pytest.param('{"run_id": 1, "reason": "\\ud800"}', "body", "line 1 column", id="surrogate"),
    pytest.param('{"run_id": 1, "model": "a\\u0000b"}', "model", "pattern", id="nul-model"),
]


@pytest.mark.parametrize(("body", "field", "says"), HOSTILE_BODIES)
def test_hostile_baseline_bodies_are_422(
    http: httpx.Client, edge_store: Store, body: str, field: str, says: str
) -> None:
    answer = http.post("/v1/baselines", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == field and says in problem["msg"], problem
    assert edge_store.verdicts.list_baselines(limit=10) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"sample": int(HUGE)}, "sample", id="sample-401-digits"),
        pytest.param({"sample": 2**31}, "sample", id="sample-past-int32"),
        pytest.param({"baseline": "2147483648"}, "baseline", id="baseline-past-int32"),
        pytest.param({"baseline": "³"}, "baseline", id="baseline-unicode-digit"),
    ],
)
def test_hostile_run_request_fields_are_422(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    request = {"benchmarkId": "qa", "models": [{"id": "prod"}], **body}
    answer = http.post("/v1/runs", content=json.dumps(request))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 1000 + "]" * 1000, id="nested-1000"),
        pytest.param('{"benchmarkId": "\\udfff", "models": [{"id": "a"}]}', id="surrogate"),
    ],
)
def test_hostile_run_request_bodies_are_422(http: httpx.Client, body: str) -> None:
    answer = http.post("/v1/runs", content=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["field"] == "body"


def test_the_token_is_still_checked_before_the_body(http: httpx.Client) -> None:
    nested = "[" * 1000 + "]" * 1000
    for path in ("/v1/baselines", "/v1/runs"):
        assert http.post(path, content=nested, headers={"Authorization": ""}).status_code == 401
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert http.post(path, content=nested, headers=read).status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/healthz", 200, id="200"),
        pytest.param("GET", "/v1/runs/2147483647", 404, id="404"),
        pytest.param("GET", "/nowhere", 404, id="404-unrouted"),
        pytest.param("GET", "/v1/runs?limit=0", 422, id="422"),
        pytest.param("GET", "/v1/runs", 401, id="401"),
        pytest.param("POST", "/v1/baselines", 413, id="413"),
        pytest.param("GET", "/boom", 500, id="500"),
    ],
)
def test_every_answer_says_nosniff(http: httpx.Client, method: str, path: str, status: int) -> None:
    headers = {"Authorization": ""} if status == 401 else {}
    content = b"x" * (11 << 20) if status == 413 else None
    answer = http.request(method, path, headers=headers, content=content)
    assert answer.status_code == status
    assert answer.headers["x-content-type-options"] == "nosniff"


def _exchange(sock: socket.socket, path: str) -> bytes:
    """One request on ``sock`` and its whole answer (read up to its Content-Length)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection was closed before the answer to {path}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the connection was closed mid-answer to {path}"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_500_keeps_the_connection_open(
    edge_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, uvicorn closed the transport after Starlette re-raised the error: the
    client's next request on that connection was reset."""
    with serve_in_thread(_app(edge_store)) as url, caplog.at_level(logging.ERROR):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=deadline(10)) as sock:
            first = _exchange(sock, "/boom")
            second = _exchange(sock, "/healthz")
            third = _exchange(sock, "/boom")
    assert first.startswith(b"HTTP/1.1 500 ") and third.startswith(b"HTTP/1.1 500 ")
    assert json.loads(first.split(b"\r\n\r\n", 1)[1]) == {"detail": INTERNAL_ERROR}
    assert b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b'{"status":"ok"}')
    logged = [r for r in caplog.records if r.exc_info and "a bug in a route" in str(r.exc_info[1])]
    assert len(logged) == 2  # once per failure, with its traceback


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_openapi_declares_every_status_with_its_body(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        if path.startswith("/v1/"):
            assert {"401", "403"} <= set(responses), where
            assert "WWW-Authenticate" in responses["401"]["headers"], where
        if "{" in path:
            assert "404" in responses, where
        if method == "post":
            assert {"413", "422"} <= set(responses) and "requestBody" in operation, where
        if operation.get("parameters"):
            assert "422" in responses, where
        for status, response in responses.items():
            if status[0] == "4":
                schema = response["content"]["application/json"]["schema"]
                assert "Problem" in json.dumps(schema), (where, status)
    ingest = spec["paths"]["/v1/streams/{name}/records"]["post"]
    assert set(ingest["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
        "application/vnd.apache.parquet",
    }
    assert "Retry-After" in ingest["responses"]["429"]["headers"]
    labels = spec["paths"]["/v1/streams/{name}/labels"]["post"]["requestBody"]["content"]
    assert labels["application/json"]["schema"]["type"] == "array"
    assert "HTTPValidationError" not in json.dumps(spec)  # FastAPI's shape is not ours


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_elsewhere(http: httpx.Client, page: str) -> None:
    """Every script, style and icon of the page is served by the daemon itself."""
    answer = http.get(page, headers={"Authorization": ""})
    assert answer.status_code == 200
    parser = _Assets()
    parser.feed(answer.text)
    assert parser.urls, "the page loads no assets: is it the documentation page?"
    for url in parser.urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert http.get(url, headers={"Authorization": ""}).status_code == 200, url
    assert "cdn" not in answer.text


def test_a_405_allows_every_method_of_the_path(http: httpx.Client) -> None:
    """``GET`` and ``POST /v1/runs`` are two routes; ``Allow`` names both."""
    for path in ("/v1/runs", "/v1/baselines"):
        answer = http.delete(path)
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, POST"
    assert http.delete("/v1/verdicts").headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param("[" * 1000 + "]" * 1000, "nested too deeply", id="nested-1000"),
        pytest.param('{"a": %s}' % ("9" * 5000), "digits", id="5000-digits"),
        pytest.param('{"a": ', "JSON decode error", id="truncated"),
    ],
)
def test_a_body_fastapi_cannot_parse_is_422_too(http: httpx.Client, body: str, says: str) -> None:
    """Where FastAPI parses a declared body itself, what it answers 400 "There was an
    error parsing the body" is a 422 naming ``body``, as on the routes here."""
    answer = http.post("/declared", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    problem = answer.json()["detail"][0]
    assert problem["field"] == "body" and says in problem["msg"], problem
