"""How long the ``monitor`` command takes to start, beside bare Python in the same run.

Times, best and median of ``--repeat`` runs each, in one process so the machine's state is
the same for every line:

- ``python -c pass``: the floor any Python command pays;
- ``monitor --version``, ``monitor --help`` and ``monitor check-config config.example.toml``:
  what a pre-commit hook, a CI step and every typo pay; the target is
  ``1.5 x python -c pass + 300 ms``;
- ``monitor run -c config.example.toml`` until ``/readyz`` answers 200 (fresh SQLite store
  in a temporary directory, migrations included): the target is 2 s on an idle machine.

    python bench/startup.py
    python bench/startup.py --repeat 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
ENV = {**os.environ, "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}


def monitor(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=ENV, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if command[1:3] != ["-c", "pass"] and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_to_ready(workdir: Path) -> float:
    """Seconds from spawning ``monitor run`` to the first ``/readyz`` 200, fresh store."""
    port = free_port()
    text = EXAMPLE.read_text()
    text = re.sub(r"(?m)^port = 8787$", f"port = {port}", text)
    text = re.sub(r'(?m)^data_dir = "monitor-data"$', f'data_dir = "{workdir / "data"}"', text)
    # The example's one relative path, made absolute so the copy can live elsewhere.
    text = text.replace('"monitor/demo/data/', f'"{ROOT}/monitor/demo/data/')
    workdir.mkdir()
    config = workdir / "config.toml"
    config.write_text(text)
    start = time.perf_counter()
    process = subprocess.Popen(
        monitor("run", "-c", str(config)),
        env={**ENV, "MONITOR_DEMO_MODEL_URL": "http://127.0.0.1:9"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.01)
        raise SystemExit(f"monitor run exited {process.returncode} before it was ready")
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(name: str, once: Callable[[], float], repeat: int) -> dict[str, float | str]:
    samples = [once() for _ in range(repeat)]
    return {"name": name, "best": min(samples), "median": statistics.median(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    rows = [
        measure("python -c pass", lambda: timed([sys.executable, "-c", "pass"]), args.repeat),
        measure("monitor --version", lambda: timed(monitor("--version")), args.repeat),
        measure("monitor --help", lambda: timed(monitor("--help")), args.repeat),
        measure(
            "monitor check-config config.example.toml",
            lambda: timed(monitor("check-config", str(EXAMPLE))),
            args.repeat,
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(args.repeat))
        rows.append(
            measure(
                "monitor run: start to /readyz 200",
                lambda: daemon_to_ready(Path(tmp) / str(next(runs))),
                args.repeat,
            )
        )
    floor = float(rows[0]["median"])
    budget = 1.5 * floor + 0.3
    for row in rows[1:4]:
        row["target"] = budget
    rows[4]["target"] = 2.0
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2))
        return
    print(f"Python {sys.version.split()[0]}, {args.repeat} runs each (seconds)")
    print(f"{'command':<44} {'best':>7} {'median':>7} {'target':>7}  within")
    for row in rows:
        target = row.get("target")
        within = "" if target is None else ("yes" if float(row["median"]) <= target else "NO")
        shown = "" if target is None else f"{float(target):7.3f}"
        print(f"{row['name']:<44} {row['best']:7.3f} {row['median']:7.3f} {shown:>7}  {within}")


if __name__ == "__main__":
    main()
