"""Does scoring land in a run's latency? The same suite with a cheap metric and with
CPU-bound ones, against one model with a fixed latency, side by side in one run.

A loopback model server (an ASGI app under uvicorn, in its own process) answers every
request ``--latency`` seconds after it reached the app and keeps its own latency (app
entry to answer sent). The same ``--cases`` cases are then run by ``Runner.run`` at
``--concurrency`` with, in turn,

- ``contains``: a few microseconds a case, scored on the event loop;
- ``rouge-l`` and ``rouge-lsum``: the longest common subsequence in pure Python;
- every text metric (exact match, token F1, contains, regex, JSON valid, JSON Schema,
  ROUGE-1/2/L/Lsum, BLEU, chrF),

and the bench prints, per line, the run's stored p50/p95 latency, the server's own p50/p95
over the same requests, their ratio, the run's throughput, the *excess* (each case's
latency less the server's own for the same case: loopback, uvicorn's parsing and both
event loops' delays), and the event loop's lag while
the line ran (how late a task sleeping 5 ms over and over wakes up: an answer that came
in waits about as long for its task, see ``LoopLag``). A run's latency is timed by the
HTTP library's hooks from the first byte sent to the last byte received (see
``monitor/adapters/exchange.py``). Two lines without the
Runner send the same requests at the same concurrency from a bare loop, timing each
request from send to body read: one on aiohttp's ``ClientSession``, one on httpx-aiohttp
(the Runner's default client). They show what the client libraries and the event loop
alone add to the server's latency, which no Runner built on them can remove. References
and answers are ``--words`` words long, so a case's ROUGE-L costs what a summary's does.
Each line runs once on a few cases first (the scoring processes start then, as they would
for a daemon's first run), then for real. Usage:

    python bench/latency_vs_scoring.py --cases 1000 --concurrency 8 --latency 0.04
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.runs.runner import Runner
from monitor.store import Store

VOCABULARY = [f"w{i}" for i in range(400)]

LINES: dict[str, list[Any]] = {
    "contains": ["contains"],
    "rouge-l + rouge-lsum": ["rouge-l", "rouge-lsum"],
    "every text metric": [
        "exact-match",
        "f1-score",
        "contains",
        {"name": "regex", "pattern": "w1[0-9]"},
        "json-valid",
        {"name": "json-schema", "schema": {"type": "string"}},
        "rouge-1",
        "rouge-2",
        "rouge-l",
        "rouge-lsum",
        "bleu",
        "chrf",
    ],
}


def serve(port: int, latency: float, words: int) -> None:
    """The model, in its own process: ``/predict`` answers ``latency`` seconds after the
    request reached the app (a text of ``words`` words, its own per case); ``/stats``
    returns the latencies it kept (case ``x`` and seconds) since the last ``/stats`` and
    forgets them."""
    import uvicorn

    kept: list[tuple[int, float]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        x = -1
        if scope["path"] == "/stats":
            payload = json.dumps(kept).encode()
            kept.clear()
        else:
            await asyncio.sleep(latency)
            x = int(json.loads(body)["x"])
            payload = json.dumps({"prediction": text(x, words, 1)}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        if scope["path"] != "/stats":
            kept.append((x, time.perf_counter() - started))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


def text(x: int, words: int, salt: int) -> str:
    """Case ``x``'s reference (salt 0) or answer (salt 1): the answer shares about half
    its words with the reference, in sentences of 20 words."""
    rng, ref = random.Random(x * 2 + salt), random.Random(x * 2)
    chosen = [
        ref.choice(VOCABULARY) if salt == 0 or rng.random() < 0.5 else rng.choice(VOCABULARY)
        for _ in range(words)
    ]
    return "\n".join(" ".join(chosen[i : i + 20]) for i in range(0, words, 20))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.post(f"{url}/stats", content=b"")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the model server did not start")


async def server_latencies(url: str) -> dict[int, float]:
    """The server's own latency of each case it answered since the last call."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{url}/stats", content=b"")
        return {int(x): float(seconds) for x, seconds in response.json()}


def measured(
    client: dict[int, float], served: dict[int, float], lag: LoopLag, elapsed: float
) -> dict[str, float]:
    """A line's figures from each case's latency as the client saw it and as the server
    did; *excess* is the client's less the server's, case by case."""
    assert sorted(client) == sorted(served), "the client and the server saw other cases"
    excess = [client[x] - served[x] for x in client]
    return {
        "p50": percentile(list(client.values()), 0.5),
        "p95": percentile(list(client.values()), 0.95),
        "server_p50": percentile(list(served.values()), 0.5),
        "server_p95": percentile(list(served.values()), 0.95),
        "excess_p50": percentile(excess, 0.5),
        "excess_p95": percentile(excess, 0.95),
        "throughput": len(client) / elapsed,
        "wall": elapsed,
        "lag_p50": percentile(lag.lags, 0.5),
        "lag_p95": percentile(lag.lags, 0.95),
    }


class LoopLag:
    """How late the event loop runs a callback that is due: a task sleeps ``PERIOD`` over
    and over and keeps how much longer each sleep took. A request's answer waits that long
    too before its task reads it."""

    PERIOD = 0.005

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.lags.append(time.perf_counter() - started - self.PERIOD)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._probe())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def one_line(
    runner: Runner, store: Store, url: str, dataset: Path, metrics: list[Any], args: Any
) -> dict[str, float]:
    suite = SuiteConfig.model_validate(
        {
            "name": "bench",
            "dataset": str(dataset),
            "task": "text",
            "metrics": metrics,
            "models": ["m"],
            "expected": "answer",
            "inputs": ["x"],
        }
    )
    model = HttpModelConfig.model_validate(
        {
            "name": "m",
            "adapter": "http",
            "url": f"{url}/predict",
            "body": {"x": "{{x}}"},
            "concurrency": args.concurrency,
            "timeout": "60s",
        }
    )
    warm = suite.model_copy(update={"sample": min(args.cases, 4 * args.concurrency)})
    await runner.run(warm, model)
    await server_latencies(url)
    started = time.perf_counter()
    with LoopLag() as lag:
        run = await runner.run(suite, model)
    elapsed = time.perf_counter() - started
    served = await server_latencies(url)
    ops = run.operations
    assert run.n_cases == args.cases and run.n_errors == 0 and ops is not None, run
    assert ops.latency_p50 is not None and ops.latency_p95 is not None
    stored = {
        int(case.case_id[1:]): case.latency_seconds or 0.0
        for case in store.runs.list_cases(run.id, limit=None)
    }
    line = measured(stored, served, lag, elapsed)
    # The run's own figures, as its report shows them.
    line.update(p50=ops.latency_p50, p95=ops.latency_p95, throughput=ops.throughput or 0.0)
    return line


BARE_LINES = ("bare aiohttp", "bare httpx-aiohttp")


async def bare_line(url: str, kind: str, args: Any) -> dict[str, float]:
    """The same requests as a run's, from a loop with no Runner: ``args.concurrency`` at a
    time, each timed from send to its body read."""
    latencies: dict[int, float] = {}
    gate = asyncio.Semaphore(args.concurrency)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    session = aiohttp.ClientSession(connector=connector) if kind == "bare aiohttp" else None
    client = HttpxAiohttpClient(timeout=60) if kind == "bare httpx-aiohttp" else None

    async def one(x: int) -> None:
        body = json.dumps({"x": str(x)}).encode()
        headers = {"content-type": "application/json"}
        async with gate:
            started = time.perf_counter()
            if session is not None:
                async with session.post(f"{url}/predict", data=body, headers=headers) as answer:
                    await answer.read()
            else:
                assert client is not None
                (await client.post(f"{url}/predict", content=body, headers=headers)).json()
            latencies[x] = time.perf_counter() - started

    try:
        await asyncio.gather(*(one(x) for x in range(min(args.cases, 4 * args.concurrency))))
        await server_latencies(url)
        latencies.clear()
        started = time.perf_counter()
        with LoopLag() as lag:
            await asyncio.gather(*(one(x) for x in range(args.cases)))
        elapsed = time.perf_counter() - started
    finally:
        if session is not None:
            await session.close()
        if client is not None:
            await client.aclose()
    served = await server_latencies(url)
    return measured(latencies, served, lag, elapsed)


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    context = multiprocessing.get_context("spawn")
    server = context.Process(target=serve, args=(port, args.latency, args.words), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, float]]] = {name: [] for name in (*BARE_LINES, *LINES)}
    try:
        await wait_listening(url)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            dataset = workdir / "cases.jsonl"
            dataset.write_text(
                "".join(
                    json.dumps({"id": f"c{i:05d}", "x": i, "answer": text(i, args.words, 0)}) + "\n"
                    for i in range(args.cases)
                )
            )
            store = Store(f"sqlite:///{workdir / 'bench.db'}")
            store.upgrade()
            runner = Runner(store)
            try:
                for _ in range(args.rounds):
                    for name in BARE_LINES:
                        results[name].append(await bare_line(url, name, args))
                    for name, metrics in LINES.items():
                        line = await one_line(runner, store, url, dataset, metrics, args)
                        results[name].append(line)
            finally:
                await runner.aclose()
                store.close()
    finally:
        server.terminate()
        server.join()
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, float]]]) -> None:
    print(
        f"cases {args.cases}, concurrency {args.concurrency}, latency"
        f" {args.latency * 1000:g} ms, {args.words} words a text, {args.rounds} round(s)"
    )
    print(
        f"{'metrics':22s} {'run p50':>8s} {'run p95':>8s} {'srv p50':>8s} {'srv p95':>8s}"
        f" {'p50 x':>6s} {'p95 x':>6s} {'req/s':>7s} {'lag p50':>8s} {'lag p95':>8s}"
        f" {'exc p50':>8s} {'exc p95':>8s}"
    )
    for name, lines in results.items():
        for line in lines:
            print(
                f"{name:22s} {line['p50'] * 1000:6.1f}ms {line['p95'] * 1000:6.1f}ms"
                f" {line['server_p50'] * 1000:6.1f}ms {line['server_p95'] * 1000:6.1f}ms"
                f" {line['p50'] / line['server_p50']:6.2f} {line['p95'] / line['server_p95']:6.2f}"
                f" {line['throughput']:7.1f}"
                f" {line['lag_p50'] * 1000:6.2f}ms {line['lag_p95'] * 1000:6.2f}ms"
                f" {line['excess_p50'] * 1000:6.2f}ms {line['excess_p95'] * 1000:6.2f}ms"
            )
    bare, cheap = results["bare httpx-aiohttp"], results["contains"]
    for i, (a, b) in enumerate(zip(bare, cheap, strict=True)):
        print(
            f"round {i + 1}: contains run / bare httpx-aiohttp loop:"
            f" p50 {b['p50'] / a['p50']:.2f}x,"
            f" p95 {b['p95'] / a['p95']:.2f}x"
        )
    cheap, heavy = results["contains"], results["every text metric"]
    for i, (a, b) in enumerate(zip(cheap, heavy, strict=True)):
        print(
            f"round {i + 1}: every text metric / contains: p50 {b['p50'] / a['p50']:.2f}x,"
            f" p95 {b['p95'] / a['p95']:.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.040)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
