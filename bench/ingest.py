"""Ingest throughput and memory: JSON batches POSTed to a real daemon API into SQLite.

Side by side in one run, on the same records and the same concurrent client:
  monitor   POST /v1/streams/NAME/records (JSON array) to the daemon's API (uvicorn, in
            its own process), validated, stored as one Arrow IPC row per batch;
  bare      a bare Starlette endpoint (uvicorn, in its own process) that decodes the
            JSON and INSERTs it one row per record (executemany, one transaction per
            batch) into a SQLite table with one typed column per field, validating
            nothing.

    python -m bench.ingest [--batch-rows 1000 100] [--rows 200000] [--clients 8] [--rounds 3]
    python -m bench.ingest --memory [--memory-rows 150000] [--clients 8]

Prints rows/s, p50/p99 latency and the ratio monitor / bare for each batch size.
``--memory`` posts ``--clients`` default-size batches at once to the daemon's API and
reports its peak resident memory over its idle size (the kernel's VmHWM), against the
bodies' size; clients retry a 429 after its ``Retry-After``.
Targets: monitor >= 0.8x bare at batches of 1,000; peak <= 2x the bodies in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

TOKEN = "bench-token-0123456789abcdef"
NUMERICAL = [f"x{i}" for i in range(8)]
CATEGORICAL = ["region", "device"]
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


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


# -- the two servers, each run in its own process ------------------------------------


def monitor_app(directory: Path) -> Any:
    from prometheus_client import CollectorRegistry

    from monitor import __version__
    from monitor.api import create_app
    from monitor.config import parse_config
    from monitor.store import Store

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
    return create_app(
        store,
        CollectorRegistry(),
        version=__version__,
        streams=config.streams,
        tokens=config.server.tokens,
    )


def bare_app(directory: Path) -> Any:
    """The peer: Starlette, the standard library's JSON and sqlite3, nothing else."""
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    path = directory / "bare.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    fields = ["ts", "id", *NUMERICAL, *CATEGORICAL]
    columns = ", ".join(f"{name} {'REAL' if name in NUMERICAL else 'TEXT'}" for name in fields)
    setup.execute(f"CREATE TABLE records (row INTEGER PRIMARY KEY, {columns})")
    setup.close()
    insert = f"INSERT INTO records ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})"

    def store(records: list[dict[str, Any]]) -> None:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(insert, [tuple(map(r.get, fields)) for r in records])
            connection.execute("COMMIT")
        finally:
            connection.close()

    async def ingest(request: Request) -> JSONResponse:
        records = json.loads(await request.body())
        await anyio.to_thread.run_sync(store, records)
        return JSONResponse({"accepted": len(records)}, status_code=201)

    return Starlette(routes=[Route("/v1/streams/bench/records", ingest, methods=["POST"])])


def serve(kind: str, directory: Path) -> None:
    """Child process: serve one app on a free loopback port, print the port."""
    import uvicorn

    app = monitor_app(directory) if kind == "monitor" else bare_app(directory)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        print(server.servers[0].sockets[0].getsockname()[1], flush=True)
        await task

    asyncio.run(run())


class Server:
    """A ``serve`` child process."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest", "--serve", kind, "--dir", str(directory)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- the client ----------------------------------------------------------------------


async def post_all(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], int]:
    """POST every body with ``clients`` concurrent connections; a 429 or 503 is retried
    after its ``Retry-After``. Returns (elapsed s, per-batch latencies, retries)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    retries = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal retries
        while not queue.empty():
            body = queue.get_nowait()
            start = time.perf_counter()
            while True:
                answer = await http.post("/v1/streams/bench/records", content=body)
                if answer.status_code not in (429, 503):
                    break
                retries += 1
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            answer.raise_for_status()
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120, limits=limits) as http:
        await http.post("/v1/streams/bench/records", content=bodies[0])  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(clients)))
        return time.perf_counter() - start, latencies, retries


def run_once(kind: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(kind, Path(tmp))
        try:
            elapsed, latencies, _ = asyncio.run(post_all(server.url, bodies, clients))
        finally:
            server.close()
    return elapsed, latencies


def throughput(args: argparse.Namespace) -> None:
    """Each round runs both servers, in alternating order; the median round is shown
    (the machine this runs on is shared, so one round alone is noisy)."""
    print(f"{args.clients} concurrent clients, 12 columns a record, SQLite in WAL mode, ", end="")
    print(f"median of {args.rounds} round(s)")
    for batch_rows in args.batch_rows:
        n_batches = max(args.rows // batch_rows, args.clients)
        pool = [make_batch(batch_rows, seed) for seed in range(min(n_batches, 50))]
        bodies = [pool[i % len(pool)] for i in range(n_batches)]
        rows = n_batches * batch_rows
        rounds: dict[str, list[tuple[float, list[float]]]] = {"monitor": [], "bare": []}
        for number in range(args.rounds):
            order = ("monitor", "bare") if number % 2 == 0 else ("bare", "monitor")
            for kind in order:
                rounds[kind].append(run_once(kind, bodies, args.clients))
        print(f"\nbatches of {batch_rows:,} rows: {n_batches} batches, {rows:,} rows")
        medians = {}
        for kind, results in rounds.items():
            elapsed, latencies = sorted(results)[len(results) // 2]
            medians[kind] = elapsed
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            each = ", ".join(f"{rows / e:,.0f}" for e, _ in results)
            print(
                f"  {kind:<8} {rows / elapsed:>10,.0f} rows/s  p50 {p50:7.1f} ms  "
                f"p99 {p99:7.1f} ms  (rounds: {each})"
            )
        ratios = [b / m for (m, _), (b, _) in zip(rounds["monitor"], rounds["bare"], strict=True)]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"  ratio monitor / bare: {medians['bare'] / medians['monitor']:.2f}x (rounds: {shown})"
        )


def memory(args: argparse.Namespace) -> None:
    body = make_batch(args.memory_rows, 0)
    bodies = [body] * args.clients
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("monitor", Path(tmp))
        try:
            asyncio.run(post_all(server.url, [make_batch(100, 1)], 1))  # warm-up
            idle = server.status("VmRSS")
            server.reset_peak()
            elapsed, _, retries = asyncio.run(post_all(server.url, bodies, args.clients))
            peak = server.status("VmHWM")
        finally:
            server.close()
    mib = 1 << 20
    over = (peak - idle) * 1024 / mib
    print(
        f"{args.clients} concurrent batches of {len(body) / 1e6:.1f} MB ({args.memory_rows:,} "
        f"rows each) in {elapsed:.1f} s, {retries} answered 429 and retried"
    )
    print(f"daemon idle {idle * 1024 / mib:.0f} MiB, peak {peak * 1024 / mib:.0f} MiB")
    print(
        f"peak over idle: {over:.0f} MiB = {over * mib / len(body):.2f}x one body, "
        f"{over * mib / (len(body) * args.clients):.2f}x all {args.clients} bodies"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-rows", type=int, nargs="+", default=[1000, 100])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per batch size")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-rows", type=int, default=150_000)
    parser.add_argument("--serve", choices=["monitor", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.dir)
    elif args.memory:
        memory(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
