"""When each event of the README's "The whole story in ten minutes" happens, in real time.

Spawns the README's invocation, ``monitor demo --degrade-after 2m --recover-after 7m`` (on
free ports, with a fresh data directory), and polls its API and its alert receiver once a
second for up to ``--limit`` (10 minutes) or until every alert that fired has resolved
after the rollback. Times are from the banner (the line with the URLs: the demo's
degradation schedule counts from there), taken from the API's own timestamps where it
has them (a verdict's and a drift report's ``created_at``) and otherwise from when the
poll first saw it (a notification at the receiver: up to a second late). The 1-minute
load average is printed at the start and the end: on a loaded machine every event moves
later.

    python bench/demo_story.py
    python bench/demo_story.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import ENV, ROOT, free_port

STORY = ["--degrade-after", "2m", "--recover-after", "7m"]
DEGRADE, RECOVER = 120.0, 420.0


def _get(url: str, **params: Any) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(url + query, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _clock(stamp: str) -> float:
    """Seconds since the epoch of an API timestamp (UTC, with or without an offset)."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def mmss(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class Demo:
    """The spawned demo, its output read on a thread, the banner's time kept."""

    def __init__(self, workdir: Path) -> None:
        command = [sys.executable, "-m", "monitor", "demo", "--port", str(free_port())]
        command += ["--data-dir", str(workdir / "data"), *STORY]
        self.lines: list[tuple[float, str]] = []
        self.banner: float | None = None
        self.api = self.receiver = ""
        self.process = subprocess.Popen(
            command,
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            now = time.time()
            self.lines.append((now, line.rstrip()))
            if found := re.search(r"verdicts:\s+(http://\S+)/v1/verdicts", line):
                self.api, self.banner = found.group(1), now
            if found := re.search(r"delivered to (http://\S+/alerts)\)", line):
                self.receiver = found.group(1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


def story(demo: Demo, limit: float) -> dict[str, Any]:
    """Poll until every fired alert resolved after the rollback, or ``limit`` seconds."""
    while demo.banner is None or not demo.receiver:
        if demo.process.poll() is not None or time.time() - (demo.banner or time.time()) > 120:
            raise SystemExit("the demo did not print its banner:\n" + _tail(demo))
        time.sleep(0.1)
    start = demo.banner
    seen: dict[str, float] = {}  # "<rule> <status>" -> first seen at the receiver
    while time.time() - start < limit:
        for payload in (_get(demo.receiver) or {}).get("notifications", []):
            alert = payload.get("alert") or {}
            seen.setdefault(f"{alert.get('rule')} {alert.get('status')}", time.time() - start)
        fired = {key.rsplit(" ", 1)[0] for key in seen if key.endswith(" firing")}
        resolved = {key.rsplit(" ", 1)[0] for key in seen if key.endswith(" resolved")}
        if time.time() - start > RECOVER and fired and fired <= resolved:
            break
        time.sleep(1.0)
    verdicts = (_get(f"{demo.api}/v1/verdicts", limit=200) or {}).get("verdicts", [])
    reports = (_get(f"{demo.api}/v1/streams/wine-traffic/reports", limit=500) or {}).get(
        "reports", []
    )
    runs = (_get(f"{demo.api}/v1/runs", limit=200) or {}).get("runs", [])
    return {
        "start": start,
        "receiver": seen,
        "verdicts": sorted(verdicts, key=lambda v: v["created_at"]),
        "reports": sorted(reports, key=lambda r: r["created_at"]),
        "runs": runs,
    }


def _tail(demo: Demo) -> str:
    return "\n".join(line for _, line in demo.lines[-30:])


def _accuracy(verdict: dict[str, Any]) -> dict[str, Any]:
    [metric] = [m for m in verdict["metrics"] if m["metric"] == "accuracy" and not m["slice"]]
    return metric


def events(found: dict[str, Any]) -> list[tuple[float, str]]:
    """The README's table rows, each with its time in seconds from the banner."""
    start = found["start"]
    rows: list[tuple[float, str]] = []

    def at(stamp: str) -> float:
        return _clock(stamp) - start

    verdicts, reports, seen = found["verdicts"], found["reports"], found["receiver"]
    done = [r for r in found["runs"] if r["status"] == "succeeded" and r["finished_at"]]
    if done:
        first_run = min(done, key=lambda r: r["finished_at"])
        rows.append((at(first_run["finished_at"]), "the first run: the suite's baseline"))
    if verdicts:
        first = _accuracy(verdicts[0])
        rows.append(
            (
                at(verdicts[0]["created_at"]),
                f"the first verdict ({verdicts[0]['outcome']}):"
                f" baseline accuracy {first['baseline']:.3f}",
            )
        )
    rows.append((DEGRADE, "the model starts to degrade (by construction)"))
    regressed = [v for v in verdicts if v["outcome"] == "regressed"]
    if regressed:
        m = _accuracy(regressed[0])
        rows.append(
            (
                at(regressed[0]["created_at"]),
                f"a verdict turns regressed (accuracy"
                f" {m['baseline']:.3f} -> {m['new']:.3f}, p = {m['p_adjusted']:.3g})",
            )
        )
        worst = min(verdicts, key=lambda v: _accuracy(v)["new"])
        rows.append(
            (at(worst["created_at"]), f"the lowest accuracy: {_accuracy(worst)['new']:.3f}")
        )
    drifted = [r for r in reports if r["dataset_drifted"]]
    if drifted:
        r = drifted[0]
        rows.append(
            (
                at(r["created_at"]),
                f"the first drifted window (drift share"
                f" {r['drift_share']:.0%}: {', '.join(r['drifted_columns'])})",
            )
        )
    worse = [r for r in reports if (r.get("performance") or {}).get("worse")]
    if worse:
        rows.append(
            (at(worse[0]["created_at"]), "the first window whose realized accuracy is worse")
        )
    rows.append((RECOVER, "the model is rolled back to healthy (by construction)"))
    after = [v for v in verdicts if at(v["created_at"]) > RECOVER]
    if after:
        rows.append(
            (
                at(after[0]["created_at"]),
                f"the first verdict after the rollback:"
                f" {after[0]['outcome']} (accuracy {_accuracy(after[0])['new']:.3f})",
            )
        )
    passed = [v for v in after if v["outcome"] == "pass"]
    if passed:
        rows.append((at(passed[0]["created_at"]), "the first passing verdict after the rollback"))
    clean = [r for r in reports if at(r["created_at"]) > RECOVER and not r["dataset_drifted"]]
    if clean:
        share = clean[0]["drift_share"] or 0.0
        rows.append(
            (
                at(clean[0]["created_at"]),
                f"the first window after it without dataset drift (drift share {share:.0%})",
            )
        )
    for key, when in seen.items():
        rule, status = key.rsplit(" ", 1)
        rows.append((when, f"the receiver logs {status.upper()} {rule}"))
    return sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        demo = Demo(Path(tmp))
        try:
            found = story(demo, args.limit)
        finally:
            demo.stop()
    rows = events(found)
    load_after = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"load": [load_before, load_after], "events": rows}))
        return
    print(
        f"monitor demo {' '.join(STORY)}: load {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end"
    )
    print("| Time | Event |\n| --- | --- |")
    for when, what in rows:
        print(f"| {mmss(when)} | {what} |")


if __name__ == "__main__":
    main()
