"""Slow clients against the daemon's HTTP server, and what its guard costs normal ones.

1. **Flood**: ``monitor run`` on the example config (demo model, a run every 2 s) at an
   open-files limit of ``--open-files`` (soft and hard); ``--clients`` connections each
   send one header byte every ``--interval`` seconds, reconnecting when closed, for
   ``--seconds``. Meanwhile a probe asks ``/healthz`` on a fresh connection every 0.2 s.
   Reported: the probe's success rate and p50/p99 latency, runs finished and failed
   during the flood, and the daemon's log lines during it.
2. **Overhead**: ``wrk`` (Debian's package) against ``/healthz`` of the daemon's own
   server function serving the same tiny app, with the guard and without, one after the
   other in the same run: requests/s and the ratio.

Usage: python bench/slow_clients.py --clients 1100 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.store import Store  # noqa: E402
from tests.daemon.test_daemon_slow_clients import slow_client  # noqa: E402
from tests.servers import MonitorProcess  # noqa: E402

TINY_SERVER = """
import asyncio, sys
from monitor.daemon.guard import HttpLimits
from monitor.daemon.serving import start_server

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

async def main():
    limits = HttpLimits() if sys.argv[1] == "guard" else None
    server = await start_server(app, host="127.0.0.1", port=0, what="bench", limits=limits)
    print(server.port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def example_config(tmp: Path) -> Path:
    text = (ROOT / "config.example.toml").read_text()
    for old, new in [
        ("port = 8787", "port = 0"),
        ('data_dir = "monitor-data"', f'data_dir = "{tmp / "data"}"'),
        ('dataset = "monitor/demo/data', f'dataset = "{ROOT}/monitor/demo/data'),
        ('every = "30s"', 'every = "2s"'),
        ('jitter = "2s"', 'jitter = "0s"'),
    ]:
        text = text.replace(old, new)
    path = tmp / "config.toml"
    path.write_text(text)
    return path


def runs(data: Path) -> list[tuple[int, str]]:
    store = Store(f"sqlite:///{data / 'monitor.db'}")
    try:
        return [(r.id, r.status.value) for r in store.runs.list_runs() if r.finished_at]
    finally:
        store.close()


async def flood(args: argparse.Namespace) -> None:
    model = MonitorProcess("demo", "--model-only", "--model-port", "0")
    model_url = model.wait_for_line(r"listening on (http://\S+)/predict").group(1)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        daemon = MonitorProcess(
            "run", "-c", str(example_config(tmp)),
            env={"MONITOR_DEMO_MODEL_URL": model_url}, open_files=args.open_files,
        )  # fmt: skip
        try:
            api = "http://127.0.0.1:" + daemon.wait_for_line(r"HTTP API on \S+:(\d+)").group(1)
            while not runs(tmp / "data"):
                await asyncio.sleep(0.2)
            before, lines = len(runs(tmp / "data")), len(daemon.output().splitlines())
            stop, opened = asyncio.Event(), [0]
            port = int(api.rsplit(":", 1)[1])
            clients = [
                asyncio.create_task(slow_client(port, stop, opened, args.interval))
                for _ in range(args.clients)
            ]
            ok, latencies, probes = 0, [], 0
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                probes += 1
                start = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient(timeout=5) as client:
                        if (await client.get(f"{api}/healthz")).status_code == 200:
                            ok += 1
                            latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*clients)
            during = runs(tmp / "data")[before:]
            failed = sum(status != "succeeded" for _, status in during)
            log = daemon.output().splitlines()[lines:]
            print(
                f"flood: {args.clients} slow clients for {args.seconds:.0f} s at an "
                f"open-files limit of {args.open_files}; {opened[0]} connections opened"
            )
            print(f"  /healthz: {ok}/{probes} answered ({ok / max(probes, 1):.0%})", end="")
            if latencies:
                q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies
                print(
                    f", p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {q[-1] * 1000:.0f} ms"
                )
            else:
                print()
            print(f"  runs finished during the flood: {len(during)}, not succeeded: {failed}")
            guard = sum("monitor.daemon.guard" in line for line in log)
            print(
                f"  daemon log lines during the flood: {len(log)}, {guard} of them the "
                "guard's (the rest: 3 a run)"
            )
        finally:
            daemon.stop()
            model.stop()


def overhead(seconds: int, rounds: int) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("overhead: skipped, wrk is not installed (apt-get install wrk)")
        return
    rates: dict[str, list[float]] = {"bare": [], "guard": []}
    for _ in range(rounds):  # alternating, so both sides see the same machine
        for mode in rates:
            rates[mode].append(wrk_rate(wrk, mode, seconds))
    ratios = [g / b for g, b in zip(rates["guard"], rates["bare"], strict=True)]
    shown = {m: ", ".join(f"{r:.0f}" for r in v) for m, v in rates.items()}
    print(f"overhead: wrk -t1 -c32 -d{seconds}s /healthz, {rounds} alternating rounds:")
    print(f"  without the guard: {shown['bare']} req/s; with it: {shown['guard']} req/s")
    print(
        f"  with / without: median {statistics.median(ratios):.2f}x "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


def wrk_rate(wrk: str, mode: str, seconds: int) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", TINY_SERVER, mode], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        out = subprocess.run(
            [wrk, "-t1", "-c32", f"-d{seconds}s", f"http://127.0.0.1:{port}/healthz"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--open-files", type=int, default=1024)
    parser.add_argument("--wrk-seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(flood(args))
    overhead(args.wrk_seconds, args.rounds)


if __name__ == "__main__":
    main()
