"""``/metrics`` over HTTP: the daemon against a bare prometheus_client server, same series.

Starts ``monitor run`` on the example config (the demo model, a run every 2 s until
``--runs`` runs finished, then the schedule is left to run), counts the series its
``/metrics`` has, serves as many labelled gauges with ``prometheus_client``'s own
``start_http_server`` in another process, and runs ``wrk -t1 -c8`` (Debian's package)
against each, ``--rounds`` alternating rounds. Reported: requests/s and the ratio.

Usage: python bench/scrape_http.py --rounds 3
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.slow_clients import example_config, runs  # noqa: E402
from tests.servers import MonitorProcess  # noqa: E402

BARE = """
import sys, time
from prometheus_client import CollectorRegistry, Gauge, start_http_server
registry = CollectorRegistry()
gauge = Gauge("bare_value", "A value.", ["suite", "model", "metric"], registry=registry)
for i in range(int(sys.argv[1])):
    gauge.labels(f"suite-{i % 4}", f"model-{i // 4 % 5}", f"metric-{i}").set(i)
server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
print(server.server_port, flush=True)
time.sleep(3600)
"""


def rate(wrk: str, url: str, seconds: int) -> float:
    out = subprocess.run(
        [wrk, "-t1", "-c8", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    model = MonitorProcess("demo", "--model-only", "--model-port", "0")
    model_url = model.wait_for_line(r"listening on (http://\S+)/predict").group(1)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        daemon = MonitorProcess(
            "run", "-c", str(example_config(tmp)), env={"MONITOR_DEMO_MODEL_URL": model_url}
        )
        bare = None
        try:
            api = "http://127.0.0.1:" + daemon.wait_for_line(r"HTTP API on \S+:(\d+)").group(1)
            while len(runs(tmp / "data")) < args.runs:
                time.sleep(0.2)
            text = httpx.get(f"{api}/metrics").text
            series = sum(len(f.samples) for f in text_string_to_metric_families(text))
            bare = subprocess.Popen(
                [sys.executable, "-c", BARE, str(series)], stdout=subprocess.PIPE, text=True
            )
            assert bare.stdout is not None
            bare_url = f"http://127.0.0.1:{int(bare.stdout.readline())}/metrics"
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(rate(wrk, f"{api}/metrics", args.seconds))
                theirs.append(rate(wrk, bare_url, args.seconds))
            ratios = [t / o for o, t in zip(ours, theirs, strict=True)]
            print(
                f"/metrics with {series} series, wrk -t1 -c8 -d{args.seconds}s, "
                f"{args.rounds} alternating rounds"
            )
            print(f"  monitor:                 {', '.join(f'{r:.0f}' for r in ours)} req/s")
            print(f"  bare prometheus_client:  {', '.join(f'{r:.0f}' for r in theirs)} req/s")
            print(f"  time per scrape, monitor / bare: median {statistics.median(ratios):.2f}x")
        finally:
            if bare is not None:
                bare.kill()
            daemon.stop()
            model.stop()


if __name__ == "__main__":
    main()
