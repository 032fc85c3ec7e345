"""Runner throughput against a model with a fixed 20 ms latency, next to a bare loop.

A loopback model server (a minimal ASGI app under uvicorn, in its own process so it does
not share the client's event loop) answers every request after exactly ``--latency``
seconds. The same ``--cases`` requests at ``--concurrency`` are then sent by

- a bare ``httpx.AsyncClient`` + ``asyncio.Semaphore`` loop (the peer), and
- ``monitor.runner.Runner`` with the ``http`` adapter and a SQLite store (the whole run:
  dataset load, every request through the transport, scoring, storing every case),

side by side, alternating, in one process. Ideal throughput is concurrency / latency, or
the server's own capacity (4x the concurrency from a raw-socket client) when that is lower.

    python bench/runner_throughput.py --cases 10000 --concurrency 64 --latency 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.runner import Runner
from monitor.store import Store

ANSWER = json.dumps({"prediction": "a"}).encode()


def serve(port: int, latency: float) -> None:
    """The model server: every POST is answered ``latency`` seconds after it arrives."""
    import uvicorn

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(latency)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(ANSWER)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ANSWER})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.post(url, json={})
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the model server did not start")


async def bare_loop(url: str, cases: list[dict[str, Any]], concurrency: int) -> float:
    """The peer: one client, one semaphore, the same requests. Returns requests/s."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(case: dict[str, Any]) -> Any:
            async with semaphore:
                response = await client.post(url, json={"x": case["x"]})
                response.raise_for_status()
                return response.json()["prediction"]

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(c) for c in cases))
        elapsed = time.perf_counter() - started
    assert len(answers) == len(cases)
    return len(cases) / elapsed


async def capacity(port: int, n: int, connections: int) -> float:
    """The server's own capacity: ``n`` requests over ``connections`` keep-alive
    connections from a minimal raw-socket HTTP/1.1 client, so the figure is the server's
    and not an HTTP client library's. Returns requests/s."""
    body = json.dumps({"x": 1}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    left = n

    async def connection() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return n / (time.perf_counter() - started)


async def runner_run(
    url: str, dataset: Path, workdir: Path, concurrency: int, n: int, round_: int
) -> float:
    """``Runner.run`` end to end on a fresh SQLite store. Returns requests/s."""
    store = Store(f"sqlite:///{workdir / f'bench-{round_}.db'}")
    store.upgrade()
    suite = SuiteConfig.model_validate(
        {
            "name": "bench",
            "dataset": str(dataset),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
        }
    )
    model = HttpModelConfig.model_validate(
        {
            "name": "m",
            "adapter": "http",
            "url": url,
            "body": {"x": "{{x}}"},
            "concurrency": concurrency,
        }
    )
    runner = Runner(store)
    try:
        started = time.perf_counter()
        run = await runner.run(suite, model)
        elapsed = time.perf_counter() - started
    finally:
        await runner.aclose()
        store.close()
    assert run.n_cases == n and run.n_errors == 0, run
    return n / elapsed


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, args.latency), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{port}/predict"
    try:
        await wait_listening(url)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            cases = [{"id": f"c{i}", "x": i, "label": "a"} for i in range(args.cases)]
            dataset = workdir / "cases.jsonl"
            dataset.write_text("".join(json.dumps(c) + "\n" for c in cases))
            await bare_loop(url, cases[:500], args.concurrency)  # warm-up
            server_capacity = await capacity(port, args.cases, args.concurrency * 4)
            bare, runner = [], []
            for round_ in range(args.rounds):
                bare.append(await bare_loop(url, cases, args.concurrency))
                runner.append(
                    await runner_run(url, dataset, workdir, args.concurrency, args.cases, round_)
                )
    finally:
        server.terminate()
        server.join()
    report(args, server_capacity, max(bare), max(runner))


def report(args: argparse.Namespace, capacity: float, bare: float, runner: float) -> None:
    ideal = min(args.concurrency / args.latency, capacity)
    print(f"cases {args.cases}, concurrency {args.concurrency}, latency {args.latency * 1000:g} ms")
    print(f"ideal (concurrency / latency)       {args.concurrency / args.latency:8.0f} req/s")
    print(f"server capacity (at {args.concurrency * 4} in flight)    {capacity:8.0f} req/s")
    share = "of ideal"
    print(f"bare httpx + semaphore loop         {bare:8.0f} req/s  {bare / ideal:6.1%} {share}")
    print(f"monitor Runner.run (end to end)     {runner:8.0f} req/s  {runner / ideal:6.1%} {share}")
    print(f"bare loop / runner time ratio       {bare / runner:8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
