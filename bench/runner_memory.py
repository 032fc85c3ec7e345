"""Runner memory: does a 100k-case run keep peak memory flat?

Runs the same suite at 10,000 and 100,000 cases against a fast loopback model server
(a bare ASGI app under uvicorn, in its own process) with the daemon's ``Runner`` and a
SQLite store, each size in a fresh Python process, and reports:

- RSS after ``open_dataset``'s checking pass (the runner streams the cases afterwards, so
  nothing of the dataset should stay), and the peak while checking;
- peak RSS over the whole run (``ru_maxrss``), the runner's own check and stream included;
- the run's growth: peak minus the RSS before the dataset was touched, in all and per case.

Flat means the peak does not grow with the number of cases beyond what the run must keep
per case (one float per per-case metric, a slice code and a latency). Usage:

    python bench/runner_memory.py            # 10k and 100k cases
    python bench/runner_memory.py --sizes 10000 50000
    python bench/runner_memory.py --tracemalloc   # plus the Python heap (slower)
    python bench/runner_memory.py --format parquet   # the same cases as Parquet (or csv)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import json, sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    x = int(json.loads(body)["x"])  # a CSV dataset sends text
    out = json.dumps({"prediction": "yes" if x % 4 else "no"}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(size: int, url: str, workdir: Path, trace: bool, form: str = "jsonl") -> dict[str, Any]:
    """One run of ``size`` cases in this (fresh) process, from the dataset the parent
    wrote as ``form`` (written there, so building it costs this process nothing).
    With ``trace``, tracemalloc also measures the Python heap: the checking pass's peak
    and what it keeps, and the run's peak."""
    sys.path.insert(0, str(ROOT))
    from monitor.config import HttpModelConfig, SuiteConfig
    from monitor.runs.datasets import open_dataset
    from monitor.runs.runner import Runner
    from monitor.store import Store

    dataset = workdir / f"cases-{size}.{form}"
    suite = SuiteConfig.model_validate(
        {
            "name": "memory",
            "dataset": str(dataset),
            "task": "classification",
            "metrics": ["accuracy", "exact-match"],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            "metadata": ["segment"],
            "slices": ["segment"],
        }
    )
    model = HttpModelConfig.model_validate(
        {"name": "m", "adapter": "http", "url": f"{url}/predict", "concurrency": 16}
    )
    store = Store(f"sqlite:///{workdir / f'monitor-{size}.db'}")
    store.upgrade()
    if trace:
        tracemalloc.start()
    heap_base = tracemalloc.get_traced_memory()[0] if trace else 0
    before = _rss_mib()
    stream = open_dataset(suite)  # the runner checks the file the same way, then streams it
    checked = _rss_mib()
    check_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    heap_check_peak = tracemalloc.get_traced_memory()[1] - heap_base if trace else 0
    heap_check_kept = tracemalloc.get_traced_memory()[0] - heap_base if trace else 0
    del stream
    if trace:
        tracemalloc.reset_peak()

    async def go() -> Any:
        runner = Runner(store)
        try:
            return await runner.run(suite, model, trigger="bench")
        finally:
            await runner.aclose()

    started = time.perf_counter()
    run = asyncio.run(go())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    heap_peak = tracemalloc.get_traced_memory()[1] - heap_base if trace else 0
    assert run.status == "succeeded" and run.n_cases == size, run
    stored = store.runs.count_cases(run.id)
    store.close()
    return {
        "cases": size,
        "stored": stored[0],
        "seconds": round(seconds, 1),
        "rss_before_mib": round(before, 1),
        "rss_dataset_checked_mib": round(checked, 1),
        "peak_rss_while_checking_mib": round(check_peak, 1),
        "peak_rss_mib": round(peak, 1),
        "run_growth_mib": round(peak - before, 1),
        "growth_bytes_per_case": round((peak - before) * 1024 * 1024 / size),
        **(
            {
                "heap_check_peak_mib": round(heap_check_peak / 2**20, 2),
                "heap_check_kept_kib": round(heap_check_kept / 2**10, 1),
                "heap_run_peak_mib": round(heap_peak / 2**20, 2),
            }
            if trace
            else {}
        ),
    }


def _write_dataset(path: Path, size: int) -> Path:
    rows = (
        {"id": f"c{i:06d}", "x": i, "segment": f"s{i % 5}", "label": "yes"} for i in range(size)
    )
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(list(rows)), path)
        return path
    with path.open("w", newline="") as out:
        if path.suffix == ".csv":
            writer = csv.DictWriter(out, fieldnames=["id", "x", "segment", "label"])
            writer.writeheader()
            writer.writerows(rows)
        else:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the model server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also measure the Python heap with tracemalloc (about 2x slower)",
    )
    parser.add_argument("--format", choices=["jsonl", "csv", "parquet"], default="jsonl")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.url, Path(args.workdir), args.tracemalloc, args.format)
        print(json.dumps(result))
        return
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory() as workdir:
            results = []
            for size in args.sizes:
                _write_dataset(Path(workdir) / f"cases-{size}.{args.format}", size)
                output = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        str(size),
                        "--url",
                        f"http://127.0.0.1:{port}",
                        "--workdir",
                        workdir,
                        *(["--tracemalloc"] if args.tracemalloc else []),
                        "--format",
                        args.format,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                ).stdout
                results.append(json.loads(output.strip().splitlines()[-1]))
                print(json.dumps(results[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"peak RSS {small['peak_rss_mib']} MiB at {small['cases']} cases, "
            f"{large['peak_rss_mib']} MiB at {large['cases']} cases "
            f"(x{large['peak_rss_mib'] / small['peak_rss_mib']:.2f} for "
            f"x{large['cases'] / small['cases']:.0f} cases); run growth "
            f"{small['run_growth_mib']} -> {large['run_growth_mib']} MiB"
        )


if __name__ == "__main__":
    main()
