"""How long ``monitor demo`` takes to show its first score, as the README's "What you see"
promises it.

Each repeat spawns ``monitor demo`` on free ports with a fresh data directory and times
three moments from the spawn: ``/readyz`` answers 200 (the API is up, migrations done),
``/v1/runs`` lists a succeeded run, and ``/metrics`` carries ``monitor_eval_score``. The
1-minute load average is printed beside each repeat: on a loaded machine the figures grow
with it, so a run is only comparable with runs at the same load. ``python -c pass`` is
timed in the same run as the floor every Python process pays.

    python bench/first_score.py
    python bench/first_score.py --repeat 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import ENV, ROOT, free_port, timed


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _until(check: Callable[[], bool], start: float, limit: float = 300.0) -> float:
    while not check():
        if time.perf_counter() - start > limit:
            raise SystemExit(f"nothing after {limit:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def one(workdir: Path) -> dict[str, float]:
    port, model_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "monitor", "demo", "--port", str(port)]
    command += ["--model-port", str(model_port), "--data-dir", str(workdir / "data")]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        ready = _until(lambda: _get(f"{api}/readyz") is not None, start)
        run = _until(lambda: '"succeeded"' in (_get(f"{api}/v1/runs") or ""), start)
        score = _until(lambda: "\nmonitor_eval_score{" in (_get(f"{api}/metrics") or ""), start)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return {"ready": ready, "first_run": run, "first_score": score, "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(5))
    results = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one(Path(tmp)))
        if not args.json:
            r = results[-1]
            print(
                f"repeat {i + 1}: /readyz {r['ready']:.1f} s, first run {r['first_run']:.1f} s,"
                f" first score in /metrics {r['first_score']:.1f} s (load {r['load']:.1f})"
            )
    summary = {
        key: statistics.median(r[key] for r in results)
        for key in ("ready", "first_run", "first_score", "load")
    }
    if args.json:
        print(json.dumps({"python_c_pass": floor, "repeats": results, "median": summary}))
    else:
        print(
            f"median: /readyz {summary['ready']:.1f} s, first score {summary['first_score']:.1f} s"
            f" (load {summary['load']:.1f}); python -c pass {floor:.3f} s"
        )


if __name__ == "__main__":
    main()
