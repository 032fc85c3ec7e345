"""Ingest under retries, load and hostile input: ``Idempotency-Key`` stores a batch once
(sequential and concurrent retries), a key reused for another body is 422, batches in
flight are bounded (429 + ``Retry-After``), a locked store is 503 + ``Retry-After``, and
hostile JSON is a 422 naming the problem, never a 500."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.api.ingest import InFlight
from monitor.config import Config
from monitor.store import Store
from monitor.store.ingest import IngestWriter
from tests.api.test_ingest_api import AUTH, URL, records, stored
from tests.servers import until
from tests.streams.conftest import MakeConfig, stream_table

JSON = {**AUTH, "Content-Type": "application/json"}


def app_for(store: Store, config: Config) -> FastAPI:
    return create_app(
        store,
        CollectorRegistry(),
        version=__version__,
        streams=config.streams,
        tokens=config.server.tokens,
    )


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api.test")


@pytest.fixture
async def http(store: Store, make_stream_config: MakeConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app_for(store, make_stream_config())) as http:
        yield http


def rows_stored(store: Store) -> int:
    table = stored(store)
    return 0 if table is None else int(table.num_rows)


async def test_a_retried_batch_is_stored_once(http: httpx.AsyncClient, store: Store) -> None:
    """Per the IETF idempotency-key draft the retry gets the first answer again: the
    same 201 and body (a client that lost the first answer sees what it would have)."""
    body = json.dumps(records(5)).encode()
    key = {"Idempotency-Key": '"7b2e4c1a-batch-0001"'}
    first = await http.post(URL, content=body, headers={**JSON, **key})
    again = await http.post(URL, content=body, headers={**JSON, **key})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other = await http.post(URL, content=body, headers={**JSON, "Idempotency-Key": "other"})
    assert other.json()["first_row"] == 5
    assert rows_stored(store) == 10


async def test_concurrent_retries_store_once(http: httpx.AsyncClient, store: Store) -> None:
    """Six at once: one is stored, five replay it."""
    body = json.dumps(records(50)).encode()
    headers = {**JSON, "Idempotency-Key": "concurrent-1"}
    answers = await asyncio.gather(
        *(http.post(URL, content=body, headers=headers) for _ in range(6))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["batch_id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5
    assert rows_stored(store) == 50


async def test_a_key_reused_for_another_body_is_422(http: httpx.AsyncClient, store: Store) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    assert (await http.post(URL, json=records(3), headers=headers)).status_code == 201
    reused = await http.post(URL, json=records(4), headers=headers)
    assert reused.status_code == 422
    assert "'k-1' was used for a different batch" in reused.json()["detail"]
    assert rows_stored(store) == 3


@pytest.mark.parametrize(
    "key",
    [b"", b"with space", b"x" * 201, "naïve".encode()],
    ids=["empty", "space", "long", "utf8"],
)
async def test_a_malformed_key_is_400(http: httpx.AsyncClient, store: Store, key: bytes) -> None:
    answer = await http.post(URL, json=records(1), headers={**AUTH, "Idempotency-Key": key})
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["detail"]
    assert stored(store) is None


async def test_batches_in_flight_are_bounded(store: Store, make_stream_config: MakeConfig) -> None:
    config = make_stream_config(source={"kind": "ingest", "max_in_flight": 1})
    app = app_for(store, config)
    gate: InFlight = app.state.ingest_in_flight
    release = asyncio.Event()
    body = json.dumps(records(5)).encode()

    async def slow() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()
        yield body[10:]

    async with client(app) as http:
        first = asyncio.create_task(http.post(URL, content=slow(), headers=JSON))

        async def in_flight() -> bool:
            return gate.count("wine") == 1

        await until(in_flight, timeout=10, what="the first batch to be in flight")
        refused = await http.post(URL, json=records(5), headers=AUTH)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "1 batch(es) in flight" in refused.json()["detail"]
        release.set()
        assert (await first).status_code == 201
        assert (await http.post(URL, json=records(5), headers=AUTH)).status_code == 201
    assert gate.count("wine") == 0 and rows_stored(store) == 10


async def test_body_bytes_in_flight_are_bounded(
    store: Store, make_stream_config: MakeConfig
) -> None:
    """A chunked body reserves the whole body limit: with one in flight, a small batch
    still fits the byte bound and passes, one that does not is 429."""
    config = make_stream_config(
        source={"kind": "ingest", "max_body_bytes": 50_000, "max_in_flight_bytes": 60_000}
    )
    app = app_for(store, config)
    gate: InFlight = app.state.ingest_in_flight
    release = asyncio.Event()
    body = json.dumps(records(5)).encode()

    async def slow() -> AsyncIterator[bytes]:
        yield body[:10]
        await release.wait()
        yield body[10:]

    async with client(app) as http:
        first = asyncio.create_task(http.post(URL, content=slow(), headers=JSON))

        async def in_flight() -> bool:
            return gate.count("wine") == 1

        await until(in_flight, timeout=10, what="the chunked batch to be in flight")
        small = await http.post(URL, json=records(5), headers=AUTH)  # ~500 bytes
        large = await http.post(URL, json=records(200), headers=AUTH)  # ~20 KB
        release.set()
        assert (await first).status_code == 201
    assert small.status_code == 201, small.text
    assert large.status_code == 429 and "50000 body bytes" in large.json()["detail"]
    assert rows_stored(store) == 10


async def test_a_locked_store_is_503_with_retry_after(
    tmp_path: Path, make_stream_config: MakeConfig
) -> None:
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}", busy_timeout_ms=50)
    store.upgrade()
    app = app_for(store, make_stream_config(stream_table(label="quality")))
    app.state.ingest_writer = IngestWriter(store, busy_retry=timedelta(milliseconds=100))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        async with client(app) as http:
            busy = await http.post(URL, json=records(3), headers=AUTH)
            labels = await http.post(
                "/v1/streams/wine/labels", json=[{"id": "r0", "quality": "x"}], headers=AUTH
            )
            holder.execute("ROLLBACK")
            later = await http.post(URL, json=records(3), headers=AUTH)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "nothing was stored" in busy.json()["detail"]
        assert labels.status_code == 503 and labels.headers["retry-after"] == "1"
        assert later.status_code == 201 and later.json()["first_row"] == 0
        assert rows_stored(store) == 3
    finally:
        holder.close()
        store.close()


def _one(**value: Any) -> bytes:
    record = {"ts": "2024-05-01T12:00:00Z", "alcohol": 1, "acidity": 1, "region": "a"}
    return json.dumps([record | value]).encode()


HOSTILE = [
    pytest.param(b"[" * 1000 + b"]" * 1000, "nested too deeply", id="nested-1000"),
    pytest.param(_one(alcohol=10**400), "float64's range", id="401-digit-integer"),
    pytest.param(_one(region="\ud800"), "surrogate", id="lone-surrogate"),
    pytest.param(_one(region={"a": [1]}), "expected a string", id="object-value"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE)
async def test_hostile_json_is_422(
    http: httpx.AsyncClient, store: Store, body: bytes, message: str
) -> None:
    answer = await http.post(URL, content=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["problems"][0]["message"]
    assert stored(store) is None


async def test_openapi_declares_the_ingest_bodies(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    records_post = paths["/v1/streams/{name}/records"]["post"]
    assert set(records_post["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
        "application/vnd.apache.parquet",
    }
    assert {"400", "413", "422", "429", "503"} <= set(records_post["responses"])
    created = records_post["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/IngestOut"}
    assert "Retry-After" in records_post["responses"]["429"]["headers"]
    assert any(p["name"] == "Idempotency-Key" for p in records_post["parameters"])
    labels_post = paths["/v1/streams/{name}/labels"]["post"]
    assert "application/json" in labels_post["requestBody"]["content"]
