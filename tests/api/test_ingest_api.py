"""``POST /v1/streams/{name}/records``: formats, auth, and whole-batch refusal."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.config import Config
from monitor.store import Store
from monitor.streams.batch import decode
from monitor.streams.evaluate import StreamEvaluator
from tests.streams.conftest import READ_TOKEN, WRITE_TOKEN, MakeConfig, stream_table

URL = "/v1/streams/wine/records"
AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}


def records(n: int, **override: Any) -> list[dict[str, Any]]:
    rows = [
        {
            "ts": f"2024-05-01T12:{i % 60:02d}:00Z",
            "id": f"r{i}",
            "alcohol": 10.0 + i,
            "acidity": i,
            "region": "north" if i % 2 else "south",
        }
        for i in range(n)
    ]
    for row in rows:
        row.update(override)
    return rows


def client_for(store: Store, config: Config) -> httpx.AsyncClient:
    app = create_app(
        store,
        CollectorRegistry(),
        version=__version__,
        streams=config.streams,
        tokens=config.server.tokens,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api.test")


@pytest.fixture
async def client(store: Store, make_stream_config: MakeConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(store, make_stream_config()) as http:
        yield http


def stored(store: Store) -> pa.Table | None:
    batches = store.streams.batches_for_rows("wine", 0, 10**9)
    return pa.concat_tables([decode(b.payload) for b in batches]) if batches else None


async def test_json_array_is_stored_as_one_batch(client: httpx.AsyncClient, store: Store) -> None:
    answer = await client.post(URL, json=records(3), headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == 3 and answer.json()["first_row"] == 0
    table = stored(store)
    assert table is not None
    assert table.column("alcohol").to_pylist() == [10.0, 11.0, 12.0]
    assert table.column("acidity").to_pylist() == [0.0, 1.0, 2.0]
    assert table.column("region").to_pylist() == ["south", "north", "south"]
    assert str(table.column("ts").type) == "timestamp[us, tz=UTC]"
    (batch,) = store.streams.batches_for_rows("wine", 0, 10)
    assert batch.first_ts.minute == 0 and batch.last_ts.minute == 2


async def test_ndjson_csv_and_parquet_bodies(client: httpx.AsyncClient, store: Store) -> None:
    ndjson = "\n".join(json.dumps(r) for r in records(2)) + "\n"
    csv = "ts,alcohol,acidity,region\n2024-05-01T13:00:00Z,1.5,,east\n"
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records(4)), sink)
    for body, kind in (
        (ndjson.encode(), "application/x-ndjson"),
        (csv.encode(), "text/csv"),
        (sink.getvalue(), "application/vnd.apache.parquet"),
    ):
        answer = await client.post(URL, content=body, headers={**AUTH, "Content-Type": kind})
        assert answer.status_code == 201, (kind, answer.text)
    table = stored(store)
    assert table is not None and table.num_rows == 7
    assert table.column("acidity").to_pylist()[2] is None  # empty CSV cell: missing
    assert [c.n_rows for c in store.streams.stream_counts()] == [7]


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        pytest.param({}, 401, "a bearer token is required", id="no-token"),
        pytest.param({"Authorization": "Bearer wrong-token-value-xx"}, 401, "unknown", id="bad"),
        pytest.param({"Authorization": f"Bearer {READ_TOKEN}"}, 403, "lacks the 'write'", id="ro"),
    ],
)
async def test_ingest_needs_a_write_token(
    client: httpx.AsyncClient, store: Store, headers: dict[str, str], status: int, detail: str
) -> None:
    answer = await client.post(URL, json=records(2), headers=headers)
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert WRITE_TOKEN not in answer.text and READ_TOKEN not in answer.text
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert stored(store) is None


def _bad(row: int, **change: Any) -> list[dict[str, Any]]:
    rows = records(5)
    rows[row].update(change)
    return rows


def _without(row: int, key: str) -> list[dict[str, Any]]:
    rows = records(5)
    del rows[row][key]
    return rows


MALFORMED = [
    pytest.param(_bad(3, alcohol="12.5"), (3, "alcohol", "expected a number"), id="wrong-type"),
    pytest.param(_bad(1, region=1.5), (1, "region", "expected a string"), id="float-category"),
    pytest.param(_bad(2, alcohol=True), (2, "alcohol", "got bool"), id="bool-number"),
    pytest.param(_without(2, "acidity"), (2, "acidity", "missing column"), id="missing-column"),
    pytest.param(_bad(0, extra=1), (0, "extra", "unknown column"), id="unknown-column"),
    pytest.param(_bad(4, ts="yesterday"), (4, "ts", "expected an ISO 8601"), id="bad-ts"),
    pytest.param(_bad(4, ts="2024-05-01T12:00:00"), (4, "ts", "with an offset"), id="naive-ts"),
    pytest.param(_bad(2, ts=None), (2, "ts", "expected an ISO 8601"), id="null-ts"),
    pytest.param([], (None, None, "the batch holds no records"), id="empty"),
    pytest.param({"ts": 1}, (None, None, "expected a JSON array"), id="not-an-array"),
    pytest.param([1, 2], (0, None, "expected a JSON object"), id="not-objects"),
]


@pytest.mark.parametrize(("body", "first"), MALFORMED)
async def test_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, store: Store, body: Any, first: tuple[Any, ...]
) -> None:
    answer = await client.post(URL, json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    problem = answer.json()["problems"][0]
    assert (problem["row"], problem["column"]) == first[:2]
    assert first[2] in problem["message"]
    assert stored(store) is None


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_refused(
    client: httpx.AsyncClient, store: Store, constant: str
) -> None:
    body = json.dumps(records(2)).replace('"acidity": 1', f'"acidity": {constant}')
    answer = await client.post(
        URL, content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and constant in answer.json()["problems"][0]["message"]
    assert stored(store) is None


async def test_problems_are_capped_but_counted(client: httpx.AsyncClient, store: Store) -> None:
    answer = await client.post(URL, json=records(100, alcohol="x"), headers=AUTH)
    assert answer.status_code == 422
    assert answer.json()["total_problems"] == 100 and len(answer.json()["problems"]) == 20


async def test_size_limits_answer_413(store: Store, make_stream_config: MakeConfig) -> None:
    config = make_stream_config(
        source={"kind": "ingest", "max_body_bytes": 4096, "max_batch_rows": 10}
    )
    async with client_for(store, config) as http:
        huge = await http.post(URL, json=records(100), headers=AUTH)
        assert huge.status_code == 413 and "4096 bytes" in huge.json()["detail"]
        ok = await http.post(URL, json=records(10), headers=AUTH)
        assert ok.status_code == 201, ok.text
    table = stored(store)
    assert table is not None and table.num_rows == 10


async def test_row_limit_answers_413(store: Store, make_stream_config: MakeConfig) -> None:
    config = make_stream_config(source={"kind": "ingest", "max_batch_rows": 10})
    async with client_for(store, config) as http:
        answer = await http.post(URL, json=records(11), headers=AUTH)
    assert answer.status_code == 413 and "at most 10" in answer.json()["detail"]
    assert stored(store) is None


async def test_unknown_stream_and_media_type(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/streams/nope/records", json=records(1), headers=AUTH)
    assert missing.status_code == 404
    xml = await client.post(URL, content=b"<a/>", headers={**AUTH, "Content-Type": "text/xml"})
    assert xml.status_code == 415


async def test_late_labels_are_joined_by_record_id(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    n = 600
    (tmp_path / "reference.csv").write_text(
        "ts,alcohol,acidity,region,quality\n"
        + "".join(
            f"2024-04-01T00:00:00Z,{a},{b},{r},{q}\n"
            for a, b, r, q in zip(
                rng.normal(10, 1, n), rng.normal(0, 1, n), rng.choice(["north", "south"], n),
                rng.choice(["good", "bad"], n, p=[0.8, 0.2]), strict=True,
            )
        )
    )  # fmt: skip
    config = make_stream_config(
        stream_table(label="quality", window={"rows": 300, "min_rows": 100})
    )
    async with client_for(store, config) as http:
        sent = await http.post(URL, json=records(300), headers=AUTH)
        assert sent.status_code == 201, sent.text
        labels = [{"id": f"r{i}", "quality": "bad" if i % 5 else "good"} for i in range(250)]
        answer = await http.post("/v1/streams/wine/labels", json=labels, headers=AUTH)
        assert answer.status_code == 201 and answer.json()["accepted"] == 250
        bad = await http.post(
            "/v1/streams/wine/labels", json=[{"id": "r1", "quality": 2.5}], headers=AUTH
        )
        assert bad.status_code == 422
        anonymous = await http.post("/v1/streams/wine/labels", json=labels)
        assert anonymous.status_code == 401
    (report,) = StreamEvaluator(config.streams[0], store).run_pending()
    assert report is not None and report.status == "ok"
    quality = next(c for c in report.columns if c["column"] == "quality")
    assert quality["quality"]["missing_share"] == pytest.approx(50 / 300)
    assert quality["drifted"]  # 80% "bad" against 20% in the reference
    assert store.streams.labels_for("wine", ["r1", "r299"]) == {"r1": "bad"}


async def test_streamed_body_over_the_limit_answers_413(
    store: Store, make_stream_config: MakeConfig
) -> None:
    config = make_stream_config(source={"kind": "ingest", "max_body_bytes": 4096})
    body = json.dumps(records(100)).encode()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked upload
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with client_for(store, config) as http:
        answer = await http.post(
            URL, content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
    assert answer.status_code == 413
    assert stored(store) is None
