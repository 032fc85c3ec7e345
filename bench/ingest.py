"""Ingest throughput: JSON batches POSTed to a real daemon API into SQLite.

Side by side in one run on the same records:
  monitor   POST /v1/streams/NAME/records (JSON array) to the API served by uvicorn on
            loopback, validated and stored as one Arrow IPC row per batch;
  per-row   the common alternative: the same JSON decoded and INSERTed one row per record
            (executemany, one transaction per batch) into a SQLite table with a JSON column.

    python -m bench.ingest [--batches 20] [--batch-rows 10000]

Prints rows/s for both and their ratio. Target: monitor >= 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.config import parse_config
from monitor.store import Store
from tests.servers import serve_in_thread

TOKEN = "bench-token-0123456789abcdef"
NUMERICAL = [f"x{i}" for i in range(8)]
CATEGORICAL = ["region", "device"]


def make_batch(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {name: rng.normal(0, 1, rows).round(6).tolist() for name in NUMERICAL}
    cols["region"] = rng.choice(["north", "south", "east", "west"], rows).tolist()
    cols["device"] = rng.choice(["ios", "android", "web"], rows).tolist()
    records = [
        {"ts": f"2024-05-01T12:{i % 60:02d}:{i % 59:02d}Z", "id": f"{seed}-{i}"}
        | {k: v[i] for k, v in cols.items()}
        for i in range(rows)
    ]
    return json.dumps(records).encode()


def bench_monitor(directory: Path, bodies: list[bytes]) -> float:
    (directory / "ref.csv").write_text("ts\n")
    config = parse_config(
        {
            "server": {"tokens": [{"name": "bench", "token": TOKEN, "scopes": ["write"]}]},
            "streams": [
                {
                    "name": "bench",
                    "timestamp": "ts",
                    "record_id": "id",
                    "numerical": NUMERICAL,
                    "categorical": CATEGORICAL,
                    "reference": {"file": "ref.csv"},
                    "window": {"every": "1h"},
                }
            ],
        },
        base_dir=directory,
    )
    store = Store(f"sqlite:///{directory / 'monitor.db'}")
    store.upgrade()
    app = create_app(
        store,
        CollectorRegistry(),
        version=__version__,
        streams=config.streams,
        tokens=config.server.tokens,
    )
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        http.post("/v1/streams/bench/records", content=bodies[0], headers=headers)  # warm-up
        start = time.perf_counter()
        for body in bodies:
            answer = http.post("/v1/streams/bench/records", content=body, headers=headers)
            answer.raise_for_status()
        elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def bench_per_row(directory: Path, bodies: list[bytes]) -> float:
    connection = sqlite3.connect(directory / "per_row.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE records (id INTEGER PRIMARY KEY, stream TEXT, ts TEXT, data TEXT)"
    )
    start = time.perf_counter()
    for body in bodies:
        records = json.loads(body)
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO records (stream, ts, data) VALUES ('bench', ?, ?)",
            [(r["ts"], json.dumps(r)) for r in records],
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    args = parser.parse_args()
    bodies = [make_batch(args.batch_rows, seed) for seed in range(args.batches)]
    rows = args.batches * args.batch_rows
    megabytes = sum(map(len, bodies)) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_monitor(Path(tmp), bodies)
        naive = bench_per_row(Path(tmp), bodies)
    print(f"{rows} rows in {args.batches} JSON batches ({megabytes:.1f} MB), 12 columns each")
    print(f"monitor ingest API -> SQLite: {rows / ours:>10,.0f} rows/s ({ours:.2f} s)")
    print(f"per-row INSERT     -> SQLite: {rows / naive:>10,.0f} rows/s ({naive:.2f} s)")
    print(f"ratio monitor / per-row: {naive / ours:.2f}x")


if __name__ == "__main__":
    main()
