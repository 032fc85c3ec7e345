"""Concurrent ingest against the running daemon on SQLite while a suite runs every
second: eight writers, each batch retried once as a client that lost its answer would,
every 429 or 503 retried after its ``Retry-After``. No answer is a 5xx other than a
503 with ``Retry-After``, and every row is stored exactly once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pyarrow as pa
import pytest

from monitor.records import RunStatus
from monitor.streams.batch import decode
from tests.api.conftest import WRITE, MakeConfig, running
from tests.servers import deadline
from tests.streams.conftest import WRITE_TOKEN as STREAM_WRITE_TOKEN
from tests.streams.conftest import MakeConfig as MakeStreamConfig

WRITERS = 8
BATCHES = 12
MAX_BATCHES = 200
ROWS = 500


def batch(writer: int, number: int) -> bytes:
    return json.dumps(
        [
            {
                "ts": f"2024-05-01T12:{i % 60:02d}:00Z",
                "id": f"w{writer}-b{number}-r{i}",
                "alcohol": 10.0 + i / ROWS,
                "acidity": float(i % 7),
                "region": "north" if i % 2 else "south",
            }
            for i in range(ROWS)
        ]
    ).encode()


@pytest.mark.integration
async def test_eight_writers_while_a_suite_runs_store_every_row_once(
    make_config: MakeConfig, make_stream_config: MakeStreamConfig
) -> None:
    config = make_config(suite={"schedule": {"every": "1s", "run_at_start": True}})
    streams = make_stream_config().streams
    tokens = (*config.server.tokens, *make_stream_config().server.tokens)
    config = config.model_copy(
        update={"streams": streams, "server": config.server.model_copy(update={"tokens": tokens})}
    )
    statuses: Counter[int] = Counter()
    auth = {"Authorization": f"Bearer {STREAM_WRITE_TOKEN}"}

    async def send(http: httpx.AsyncClient, body: bytes, key: str) -> dict[str, object]:
        headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": key}
        while True:
            answer = await http.post("/v1/streams/wine/records", content=body, headers=headers)
            statuses[answer.status_code] += 1
            if answer.status_code not in (429, 503):
                assert answer.status_code == 201, answer.text
                result: dict[str, object] = answer.json()
                return result
            await asyncio.sleep(float(answer.headers["retry-after"]) / 10)

    suite_runs = 0
    sent: Counter[int] = Counter()

    async def writer(http: httpx.AsyncClient, number: int) -> None:
        # At least BATCHES each, and on until two suite runs finished beside them.
        while sent[number] < BATCHES or (suite_runs < 2 and sent[number] < MAX_BATCHES):
            b = sent[number]
            body, key = batch(number, b), f"w{number}-b{b}"
            first = await send(http, body, key)
            assert await send(http, body, key) == first  # the retry: answered, not stored
            sent[number] += 1

    async with running(config) as (daemon, url):

        async def count_runs() -> None:
            nonlocal suite_runs
            while True:
                runs = await asyncio.to_thread(daemon.store.runs.list_runs, suite="qa")
                suite_runs = sum(r.status == RunStatus.SUCCEEDED for r in runs)
                await asyncio.sleep(0.1)

        counting = asyncio.create_task(count_runs())
        async with httpx.AsyncClient(base_url=url, timeout=deadline(60)) as http:
            await asyncio.gather(*(writer(http, n) for n in range(WRITERS)))
            counting.cancel()
            assert suite_runs >= 2, "expected two suite runs to finish beside the ingest"
            assert (await http.get("/v1/runs", headers=WRITE)).status_code == 200
        batches = await asyncio.to_thread(daemon.store.streams.batches_for_rows, "wine", 0, 10**9)
    assert not [s for s in statuses if s >= 500 and s != 503], statuses
    table = pa.concat_tables([decode(b.payload) for b in batches])
    ids = table.column("id").to_pylist()
    assert len(batches) == sum(sent.values())
    assert len(ids) == sum(sent.values()) * ROWS == len(set(ids))
