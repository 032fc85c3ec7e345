"""Runner throughput and CPU per case against a model of fixed latency, next to a bare
aiohttp loop, at one or more latencies in one run (``--latency 0.02 0.5 2``).

A loopback model server, in its own process so it does not share the client's event loop,
answers every request ``--latency`` seconds after it arrived: by default a minimal
asyncio server that holds that latency to within a few hundred microseconds under load
(``--server precise``, see ``serve_precise``), or an ASGI app under uvicorn
(``--server uvicorn``), whose own per-request cost and millisecond timers add 2-4 ms at
3,200 requests/s. The same requests at ``--concurrency`` are then sent by

- a bare ``aiohttp.ClientSession`` + ``asyncio.Semaphore`` loop (the peer: the library
  under the runner's default client, with nothing of monitor around it),
- a minimal raw-socket HTTP/1.1 client at the same concurrency (what any client can reach
  on this machine: the server's latency plus the round trip), and
- ``monitor.runs.runner.Runner`` with the ``http`` adapter, a suite scoring
  ``exact-match`` and a SQLite store (the whole run: dataset load, every request through
  the transport, scoring, storing every case), with the default
  ``http_client = "aiohttp"`` and with ``"httpx"``,

side by side, alternating, in one process. Each line reports requests/s and the process's
CPU time per case (``time.process_time()`` over the run, every thread, divided by the
cases). Ideal throughput is concurrency / latency, or the server's own capacity (4x the
concurrency from a raw-socket client) when that is lower. Each latency runs enough cases
for ``--seconds`` of ideal time, at most ``--cases``.

    python bench/runner_throughput.py --latency 0.02 0.5 2 --rounds 2
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

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.daemon.heap import freeze_startup_objects, own_process, preload
from monitor.runs.runner import Runner
from monitor.store import Store

ANSWER = json.dumps({"prediction": "a"}).encode()


class Measured:
    """Requests/s and CPU seconds per case of one line, one round."""

    def __init__(self, cases: int, elapsed: float, cpu: float) -> None:
        self.rate = cases / elapsed
        self.cpu_per_case = cpu / cases


def serve(port: int, latency: float, kind: str, late: Any) -> None:
    """The model server, in its own process: every request is answered ``latency``
    seconds after its last byte arrived. ``late`` (shared doubles: sum, count) collects
    how late the answers went out (the ``precise`` server only)."""
    if kind == "uvicorn":
        serve_uvicorn(port, latency)
    else:
        serve_precise(port, latency, late)


def serve_precise(port: int, latency: float, late: Any) -> None:
    """A minimal HTTP/1.1 server that holds its latency: an asyncio protocol with the
    ``httptools`` parser (keep-alive, bodies in any number of packets), each answer sent by
    a timer at arrival + ``latency``, on a ``select()`` event loop. ``epoll`` waits in
    whole milliseconds, so on the default loop every timer fires up to 1 ms late and a
    20 ms model answers in 20.5 ms on average, which caps any client at about 97%."""
    import selectors

    import httptools

    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
        % (len(ANSWER), ANSWER)
    )
    lateness = [0.0, 0]

    class Model(asyncio.Protocol):
        def __init__(self) -> None:
            self.loop = asyncio.get_running_loop()
            self.parser = httptools.HttpRequestParser(self)
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            due = self.loop.time() + latency
            self.loop.call_at(due, self.answer, due)

        def answer(self, due: float) -> None:
            lateness[0] += self.loop.time() - due
            lateness[1] += 1
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(response)

    async def report() -> None:
        while True:
            await asyncio.sleep(0.2)
            with late.get_lock():
                late[0], late[1] = lateness

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Model, "127.0.0.1", port, backlog=4096)
        reporter = asyncio.ensure_future(report())
        try:
            await server.serve_forever()
        finally:
            reporter.cancel()

    loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
    loop.run_until_complete(main())


def serve_uvicorn(port: int, latency: float) -> None:
    """The same model as an ASGI app under uvicorn: what a Python model server costs."""
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
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.post(url, json={}) as response:
                    await response.read()
                return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("the model server did not start")


async def bare_loop(url: str, cases: list[dict[str, Any]], concurrency: int) -> Measured:
    """The peer: one ``aiohttp.ClientSession`` (``concurrency`` connections), one
    semaphore, the same requests, each answer's JSON decoded."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(case: dict[str, Any]) -> Any:
            async with semaphore, session.post(url, json={"x": case["x"]}) as response:
                response.raise_for_status()
                return (await response.json())["prediction"]

        cpu, started = time.process_time(), time.perf_counter()
        answers = await asyncio.gather(*(one(c) for c in cases))
        measured = Measured(len(cases), time.perf_counter() - started, time.process_time() - cpu)
    assert len(answers) == len(cases)
    return measured


async def capacity(port: int, n: int, connections: int) -> Measured:
    """The server's own capacity: ``n`` requests over ``connections`` keep-alive
    connections from a minimal raw-socket HTTP/1.1 client, so the figure is the server's
    and not an HTTP client library's."""
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

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return Measured(n, time.perf_counter() - started, time.process_time() - cpu)


async def runner_run(
    url: str,
    dataset: Path,
    workdir: Path,
    concurrency: int,
    n: int,
    round_: int,
    http_client: str = "aiohttp",
) -> Measured:
    """``Runner.run`` end to end on a fresh SQLite store."""
    store = Store(f"sqlite:///{workdir / f'bench-{round_}-{n}-{http_client}.db'}")
    store.upgrade()
    suite = SuiteConfig.model_validate(
        {
            "name": "bench",
            "dataset": str(dataset),
            "task": "text",
            "metrics": ["exact-match"],
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
            "http_client": http_client,
        }
    )
    runner = Runner(store)
    try:
        cpu, started = time.process_time(), time.perf_counter()
        run = await runner.run(suite, model)
        measured = Measured(n, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await runner.aclose()
        store.close()
    assert run.n_cases == n and run.n_errors == 0, run
    return measured


async def main(args: argparse.Namespace) -> None:
    for latency in args.latency:
        await one_latency(args, latency)


async def one_latency(args: argparse.Namespace, latency: float) -> None:
    """Every line at ``latency``, in rounds, against a model server of its own."""
    port = free_port()
    context = multiprocessing.get_context("spawn")
    late = context.Array("d", 2)
    server = context.Process(target=serve, args=(port, latency, args.server, late), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}/predict"
    n = min(args.cases, max(args.concurrency, round(args.concurrency / latency * args.seconds)))
    c = args.concurrency
    try:
        await wait_listening(url)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            cases = [{"id": f"c{i}", "x": i, "label": "a"} for i in range(n)]
            dataset = workdir / "cases.jsonl"
            dataset.write_text("".join(json.dumps(c) + "\n" for c in cases))
            # Warm-up: connections, and what the first run imports and builds lazily.
            warm = cases[: min(n, 2 * c)]
            await bare_loop(url, warm, c)
            (workdir / "warm.jsonl").write_text("".join(json.dumps(c) + "\n" for c in warm))
            await runner_run(url, workdir / "warm.jsonl", workdir, c, len(warm), -1)
            server_capacity = (await capacity(port, max(n, 4 * c), c * 4)).rate
            results: dict[str, list[Measured]] = {name: [] for name in LINES}
            for round_ in range(args.rounds):
                results["bare"].append(await bare_loop(url, cases, c))
                results["raw"].append(await capacity(port, n, c))
                results["runner"].append(await runner_run(url, dataset, workdir, c, n, round_))
                results["runner_httpx"].append(
                    await runner_run(url, dataset, workdir, c, n, round_, "httpx")
                )
        await asyncio.sleep(0.5)  # the server's last lateness report
    finally:
        server.terminate()
        server.join()
    report(args, latency, n, server_capacity, results, late[0] / late[1] if late[1] else None)


LINES = {
    "bare": "bare aiohttp + semaphore loop",
    "raw": "raw-socket client, same concurrency",
    "runner": "monitor Runner.run, http_client aiohttp",
    "runner_httpx": "the same, http_client = httpx",
}


def report(
    args: argparse.Namespace,
    latency: float,
    n: int,
    capacity: float,
    results: dict[str, list[Measured]],
    late: float | None,
) -> None:
    """Best of the rounds per line (every round in brackets), as shares of ideal, and
    the CPU per case of that best round."""
    ideal = min(args.concurrency / latency, capacity)
    print(
        f"cases {n}, concurrency {args.concurrency}, latency {latency * 1000:g} ms,"
        f" {args.server} server"
    )
    if late is not None:
        print(f"answers sent late by (mean, at the server)  {late * 1e6:6.0f} us")
    print(f"ideal (concurrency / latency)           {args.concurrency / latency:8.1f} req/s")
    print(f"server capacity (at {args.concurrency * 4} in flight)        {capacity:8.0f} req/s")
    for key, label in LINES.items():
        best = max(results[key], key=lambda m: m.rate)
        rounds = ", ".join(f"{m.rate:.1f}" for m in results[key])
        print(
            f"{label:39s} {best.rate:8.1f} req/s  {best.rate / ideal:6.1%} of ideal"
            f"  {best.cpu_per_case * 1e6:6.0f} us CPU/case  [{rounds}]"
        )
    runner = max(m.rate for m in results["runner"])
    for key in ("bare", "raw", "runner_httpx"):
        ratio = runner / max(m.rate for m in results[key])
        print(f"runner throughput / {LINES[key]:37s} {ratio:6.1%}")
    print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="at most, per latency")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="ideal run time per latency (sets cases)"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--latency", type=float, nargs="+", default=[0.020], help="seconds; one or more"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--server",
        choices=["precise", "uvicorn"],
        default="precise",
        help="the model server: a minimal one that holds its latency, or an ASGI app",
    )
    # As the monitor command does before its event loop starts (monitor/daemon/heap.py).
    own_process()
    preload()  # as the daemon does once it is ready
    freeze_startup_objects()
    asyncio.run(main(parser.parse_args()))
