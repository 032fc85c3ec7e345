"""Schemathesis against a real ``monitor run`` daemon, on SQLite and on PostgreSQL: every
operation of its own OpenAPI document, every check, with a read token and with a write
token. It must find no 5xx and no answer that contradicts the document (status, content
type, headers, body schema), and it must see schema-valid requests accepted.

CI-sized: a bounded number of examples per operation, no shrinking, a fixed seed
(``derandomize``) so a failure reproduces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, Phase, settings
from prometheus_client import CollectorRegistry
from schemathesis.config import SchemathesisConfig

from monitor import __version__
from monitor.api import create_app
from monitor.api.openapi import INGEST_BODIES
from monitor.store import Store
from tests.api.conftest import QUESTIONS, READ, READ_TOKEN, WRITE, WRITE_TOKEN
from tests.servers import MonitorProcess, deadline, serve_in_thread, wait_for
from tests.store.conftest import BACKENDS, _postgres_schema_url

pytestmark = pytest.mark.integration

CONFIG = """
[server]
port = 0
host = "127.0.0.1"
allowed_endpoint_prefixes = ["{model}/v1"]
tokens = [
  {{ name = "ci", token = "{write}", scopes = ["write"] }},
  {{ name = "viewer", token = "{read}", scopes = ["read"] }},
]

[store]
data_dir = "{data}"
{store_url}

[[models]]
name = "prod"
adapter = "openai"
url = "{model}/v1"
model = "good"
prompt = "{{{{question}}}}"
retry = {{ attempts = 0 }}

[[suites]]
name = "qa"
dataset = "{dataset}"
task = "text"
expected = "answer"
metrics = ["exact-match", "f1-score"]
models = ["prod"]

[[streams]]
name = "clicks"
timestamp = "ts"
record_id = "id"
numerical = ["x"]
categorical = ["region"]
label = "clicked"
label_kind = "categorical"
reference = {{ file = "{reference}" }}
window = {{ rows = 50, min_rows = 10 }}
"""


def _model_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        question = (await request.json())["messages"][-1]["content"]
        return {
            "choices": [{"message": {"role": "assistant", "content": QUESTIONS.get(question, "")}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }

    return app


@pytest.fixture(scope="module", params=BACKENDS)
def store_line(request: pytest.FixtureRequest) -> Iterator[str]:
    """The ``[store]`` URL line: SQLite in the data directory, or a fresh PostgreSQL
    schema (whose 32-bit ``INTEGER`` ids overflowed past 2**31-1)."""
    if request.param == "sqlite":
        yield ""
    else:
        for url in _postgres_schema_url():
            yield f"url = {json.dumps(url)}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, store_line: str) -> Iterator[str]:
    """A daemon with a suite that has a succeeded run and a baseline, and a stream with
    records, so the fuzzer reaches found resources as well as missing ones."""
    root = tmp_path_factory.mktemp("fuzz")
    dataset = root / "qa.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "question": q, "answer": a}) + "\n"
            for i, (q, a) in enumerate(QUESTIONS.items())
        )
    )
    reference = root / "reference.jsonl"
    reference.write_text(
        "".join(
            json.dumps({"ts": "2024-05-01T00:00:00Z", "id": f"r{i}", "x": i % 7, "region": "eu"})
            + "\n"
            for i in range(100)
        )
    )
    with serve_in_thread(_model_app()) as model:
        config = root / "monitor.toml"
        config.write_text(
            CONFIG.format(
                model=model,
                write=WRITE_TOKEN,
                read=READ_TOKEN,
                data=root / "data",
                dataset=dataset,
                reference=reference,
                store_url=store_line,
            )
        )
        process = MonitorProcess("run", "-c", str(config))
        try:
            port = process.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
            api = f"http://127.0.0.1:{port}"
            _seed(api)
            yield api
        finally:
            process.stop()


def _seed(api: str) -> None:
    with httpx.Client(base_url=api, timeout=deadline(10)) as http:
        posted = http.post(
            "/v1/runs", json={"benchmarkId": "qa", "models": [{"id": "prod"}]}, headers=WRITE
        )
        assert posted.status_code == 202, posted.text
        request_id = posted.json()["runId"]

        def completed() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(f"/v1/runs/{request_id}", headers=READ).json()
            return body if body["status"] in ("completed", "failed") else None

        done = wait_for(completed, timeout=60, what="the seed run")
        assert done["status"] == "completed", done
        promoted = http.post(
            "/v1/baselines", json={"run_id": done["runs"][0]["run"]}, headers=WRITE
        )
        assert promoted.status_code == 201, promoted.text
        records = [
            {"ts": "2024-06-01T00:00:00Z", "id": f"n{i}", "x": i % 5, "region": "us"}
            for i in range(60)
        ]
        ingested = http.post("/v1/streams/clicks/records", json=records, headers=WRITE)
        assert ingested.status_code == 201, ingested.text


def _document() -> dict[str, Any]:
    """The daemon's OpenAPI document, built as the daemon builds it: the routes and
    schemas do not depend on the configuration (``test_the_fuzzed_document_is_the_daemons``
    checks that the daemon serves this very document)."""
    store = Store("sqlite://")
    try:
        document: dict[str, Any] = create_app(
            store, CollectorRegistry(), version=__version__
        ).openapi()
    finally:
        store.close()
    return document


ACCEPTED = ["2xx", "401", "403", "404", "409"]

# The document takes NDJSON as text and Parquet as bytes: send them as such.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schemathesis.serializer.alias("application/vnd.apache.parquet", "application/octet-stream")

# Schemathesis' lazy loader (``from_fixture``) does not run under pytest 9, so the
# operations are collected from the document and the requests sent to the daemon.
schema = schemathesis.openapi.from_dict(
    _document(),
    config=SchemathesisConfig.from_dict(
        {
            # A schema promises which requests are well formed, not that the names and
            # ids in them exist (404, 409) ...
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
            # ... nor, in a body, that the suite and models named are configured or that
            # a batch fits a stream's columns (422 naming the field or the rows).
            "operations": [
                {
                    "include-method": "POST",
                    "include-path": ["/v1/runs", *INGEST_BODIES],
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}
                    },
                }
            ],
        }
    ),
)


@schema.parametrize()
@settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_document(daemon: str, case: Any) -> None:
    for token in (READ_TOKEN, WRITE_TOKEN):
        case.call_and_validate(base_url=daemon, headers={"Authorization": f"Bearer {token}"})


def test_the_fuzzed_document_is_the_daemons(daemon: str) -> None:
    assert httpx.get(f"{daemon}/openapi.json").json() == _document()


def test_the_fuzzer_sees_the_whole_document(daemon: str) -> None:
    """No operation escapes the fuzzer for want of a body it could build."""
    spec = httpx.get(f"{daemon}/openapi.json").json()
    posts = [path for path, ops in spec["paths"].items() if "post" in ops]
    assert posts and all("requestBody" in spec["paths"][p]["post"] for p in posts)
