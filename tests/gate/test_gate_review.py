"""Approval gates and tiers end to end, as a release pipeline runs them: a real ``monitor
run`` daemon and real ``monitor gate`` commands on one store, the suite holding regressed
verdicts for review. A gate with ``--wait-review`` blocks until a person approves through
the daemon's API (then exits 0) or rejects with ``monitor review reject`` (then 1); one
without it exits 4. The audit export then lists the promotion, the reviews and a silence
with who and when. A smoke-tier gate, local and remote, is judged against the smoke
tier's baseline."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.gate.test_gate_command import ENV, TOKEN, monitor, parity_model
from tests.servers import MonitorProcess, deadline, serve_in_thread, wait_for

pytestmark = pytest.mark.integration

CASES = 100
SMOKE = 40
READ_TOKEN = "review-read-token-0123456789"
WRITE = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


@dataclass
class Setup:
    root: Path
    url: str
    baseline_run: int


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """A suite with ``review = "on-regression"``, a promoted baseline of ``prod``, a
    degraded ``candidate`` and a running daemon on the same SQLite store."""
    root = tmp_path_factory.mktemp("review")
    (root / "parity.jsonl").write_text(
        "".join(
            json.dumps({"id": f"n{n:03d}", "n": n, "label": "even" if n % 2 == 0 else "odd"}) + "\n"
            for n in range(CASES)
        )
    )
    with (
        serve_in_thread(parity_model(degraded=False)) as good,
        serve_in_thread(parity_model(degraded=True)) as bad,
    ):
        models = "".join(
            f"""
[[models]]
name = "{name}"
role = "{role}"
adapter = "http"
url = "{url}/predict"
body = {{ n = "{{{{n}}}}" }}
prediction = "label"
"""
            for name, role, url in (("prod", "production", good), ("candidate", "candidate", bad))
        )
        (root / "monitor.toml").write_text(
            f"""
[server]
port = 0

[[server.tokens]]
name = "release-bot"
token = "${{GATE_TOKEN}}"
scopes = ["read", "write"]

[[server.tokens]]
name = "viewer"
token = "{READ_TOKEN}"
scopes = ["read"]

[store]
data_dir = "data"
{models}
[[suites]]
name = "numbers"
dataset = "parity.jsonl"
task = "classification"
expected = "label"
inputs = ["n"]
metrics = ["accuracy"]
models = ["prod", "candidate"]
review = "on-regression"

[suites.tiers]
smoke = {{ sample = {SMOKE} }}
full = {{}}
"""
        )
        first = monitor("bench", "-c", "monitor.toml", "--suite", "numbers", "--model", "prod",
                        "--json", cwd=root)  # fmt: skip
        assert first.returncode == 0, first.stderr
        run_id = json.loads(first.stdout)["runs"][0]["id"]
        promoted = monitor("baseline", "promote", "-c", "monitor.toml", str(run_id),
                           "--reason", "v1 shipped", "--by", "alice", cwd=root)  # fmt: skip
        assert promoted.returncode == 0, promoted.stderr
        daemon = MonitorProcess("run", "-c", "monitor.toml", cwd=root, env=ENV)
        try:
            url = daemon.wait_for_line(r"HTTP API on (http://\S+) ").group(1)
            yield Setup(root, url, run_id)
        finally:
            daemon.stop()


def gate_process(setup: Setup, name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "gate", "-c", "monitor.toml", "--suite", "numbers",
         "--model", "candidate", "--report-json", f"{name}.json", *extra],
        cwd=setup.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV, "MONITOR_TOKEN": TOKEN},
    )  # fmt: skip


def waiting_verdict(
    http: httpx.Client, seen: set[int], gate: subprocess.Popen[str]
) -> dict[str, object] | None:
    """The newest verdict of the suite that waits for review and is not in ``seen``."""
    if gate.poll() is not None:
        _, stderr = gate.communicate()
        raise AssertionError(f"the gate exited {gate.returncode} before a verdict: {stderr}")
    page = http.get("/v1/verdicts", params={"suite": "numbers"}, headers=READ).json()
    return next(
        (v for v in page["verdicts"] if v["review"] == "needs_review" and v["id"] not in seen),
        None,
    )


def test_a_held_verdict_blocks_the_gate_until_approved_through_the_api(setup: Setup) -> None:
    gate = gate_process(setup, "approved", "--wait-review", "10m")
    try:
        with httpx.Client(base_url=setup.url, timeout=deadline(10)) as http:
            verdict = wait_for(
                lambda: waiting_verdict(http, set(), gate),
                timeout=120,
                what="a held verdict",
                interval=0.2,
            )
            assert verdict["outcome"] == "regressed"
            assert gate.poll() is None, "the gate did not wait for the review"
            # A read token cannot decide; a decision needs a reason.
            body = {"decision": "approve", "reason": "accepted: the drop is the new policy"}
            denied = http.post(f"/v1/verdicts/{verdict['id']}/review", json=body, headers=READ)
            assert denied.status_code == 403
            empty = {"decision": "approve", "reason": ""}
            assert (
                http.post(f"/v1/verdicts/{verdict['id']}/review", json=empty, headers=WRITE)
            ).status_code == 422
            assert gate.poll() is None
            approved = http.post(f"/v1/verdicts/{verdict['id']}/review", json=body, headers=WRITE)
            assert approved.status_code == 200, approved.text
            assert approved.json()["reviewed_by"] == "release-bot"
            twice = http.post(f"/v1/verdicts/{verdict['id']}/review", json=body, headers=WRITE)
            assert twice.status_code == 409 and "already approved by release-bot" in twice.text
            logged = http.get("/v1/audit", params={"action": "review.approved"}, headers=READ)
            assert {(e["actor"], e["target"], e["reason"]) for e in logged.json()["entries"]} >= {
                ("release-bot", f"verdict {verdict['id']}", body["reason"])
            }
        _, stderr = gate.communicate(timeout=deadline(60))
    finally:
        stop(gate)
    assert gate.returncode == 0, stderr
    assert f"verdict {verdict['id']} of run {verdict['run_id']} (regressed) waits" in stderr
    report = json.loads((setup.root / "approved.json").read_text())
    assert report["exit_code"] == 0 and report["verdict"]["outcome"] == "regressed"
    assert report["verdict"]["review"] == "approved"
    assert "Approved by release-bot: accepted" in report["summary"]


def stop(gate: subprocess.Popen[str]) -> None:
    if gate.poll() is None:
        gate.kill()
        gate.communicate()


def held_gate(setup: Setup, name: str) -> dict[str, object]:
    """Run a gate without waiting: it exits 4 with the held verdict; its report."""
    held = monitor("gate", "-c", "monitor.toml", "--suite", "numbers", "--model", "candidate",
                   "--report-json", f"{name}.json", cwd=setup.root)  # fmt: skip
    assert held.returncode == 4, held.stderr
    report: dict[str, object] = json.loads((setup.root / f"{name}.json").read_text())
    return report


def test_cli_reviews_and_the_audit_export_lists_them_with_who_and_when(setup: Setup) -> None:
    # Without --wait-review a held verdict exits 4; `monitor review approve` decides it.
    report = held_gate(setup, "held")
    verdict = report["verdict"]
    assert isinstance(verdict, dict) and verdict["review"] == "needs_review"
    assert "Needs review" in str(report["summary"])
    waiting = monitor("review", "list", "-c", "monitor.toml", cwd=setup.root)
    assert f"run {verdict['run_id']}  verdict {verdict['id']}  numbers  candidate" in waiting.stdout
    decided = monitor("review", "approve", "-c", "monitor.toml", str(verdict["run_id"]),
                      "--reason", "fine", "--by", "erin", cwd=setup.root)  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert f"verdict {verdict['id']} of run {verdict['run_id']}" in decided.stdout
    approved = verdict

    # A remote gate waits on the daemon; `monitor review reject` fails it (exit 1).
    with httpx.Client(base_url=setup.url, timeout=deadline(10)) as http:
        gate = gate_process(setup, "rejected", "--remote", setup.url, "--wait-review", "10m")
        try:
            verdict = wait_for(
                lambda: waiting_verdict(http, {approved["id"]}, gate),
                timeout=120,
                what="a remote verdict",
                interval=0.2,
            )
            assert gate.poll() is None
            run = str(verdict["run_id"])
            rejected = monitor("review", "reject", "-c", "monitor.toml", run, "--reason",
                               "too risky", "--by", "carol", cwd=setup.root)  # fmt: skip
            assert rejected.returncode == 0, rejected.stderr
            _, stderr = gate.communicate(timeout=deadline(60))
        finally:
            stop(gate)
    assert gate.returncode == 1, stderr
    remote = json.loads((setup.root / "rejected.json").read_text())
    assert remote["verdict"]["review"] == "rejected" and remote["run"]["trigger"] == "api"
    again = monitor("review", "approve", "-c", "monitor.toml", str(verdict["run_id"]),
                    "--reason", "changed my mind", cwd=setup.root)  # fmt: skip
    assert again.returncode == 2 and "already rejected by carol" in again.stderr
    verdict = approved

    silenced = monitor("alerts", "silence", "-c", "monitor.toml", "--match", "suite=numbers",
                       "--for", "1h", "--comment", "release window", "--by", "dave",
                       cwd=setup.root)  # fmt: skip
    assert silenced.returncode == 0, silenced.stderr
    exported = monitor("audit", "export", "-c", "monitor.toml", "--since", "1d", cwd=setup.root)
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    who = [(e["action"], e["actor"]) for e in entries]
    assert ("baseline.promoted", "alice") in who
    assert ("review.approved", "erin") in who
    assert ("review.rejected", "carol") in who
    assert ("alert.silenced", "dave") in who
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    promotion = next(e for e in entries if e["action"] == "baseline.promoted")
    assert promotion["details"]["run_id"] == setup.baseline_run
    assert promotion["reason"] == "v1 shipped" and promotion["at"].endswith("+00:00")

    as_csv = monitor("audit", "export", "-c", "monitor.toml", "--format", "csv",
                     "--action", "review.approved", cwd=setup.root)  # fmt: skip
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["action"] for r in rows} == {"review.approved"}
    row = next(r for r in rows if r["actor"] == "erin")
    assert (row["target"], row["reason"]) == (f"verdict {verdict['id']}", "fine")
    assert json.loads(row["details"])["outcome"] == "regressed"

    with httpx.Client(base_url=setup.url, timeout=deadline(10)) as http:
        first = http.get("/v1/audit", params={"limit": 2}, headers=READ).json()
        assert len(first["entries"]) == 2 and first["next_before"] is not None
        rest = http.get("/v1/audit", params={"before": first["next_before"]}, headers=READ).json()
        # Other tests of the module may add entries meanwhile: the pages overlap nothing.
        ids = [e["id"] for e in first["entries"] + rest["entries"]]
        assert ids == sorted(set(ids), reverse=True) and len(ids) >= len(entries)
        assert rest["next_before"] is None
        assert http.get("/v1/audit").status_code == 401
        bad = http.get("/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=READ)
        assert bad.status_code == 422


def test_a_smoke_gate_is_judged_against_the_smoke_baseline(setup: Setup) -> None:
    bench = monitor("bench", "-c", "monitor.toml", "--suite", "numbers", "--model", "prod",
                    "--tier", "smoke", "--json", cwd=setup.root)  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    (smoke,) = json.loads(bench.stdout)["runs"]
    assert (smoke["tier"], smoke["n_cases"]) == ("smoke", SMOKE)
    promoted = monitor("baseline", "promote", "-c", "monitor.toml", str(smoke["id"]),
                       cwd=setup.root)  # fmt: skip
    assert promoted.returncode == 0 and "tier smoke" in promoted.stdout, promoted.stderr

    def smoke_gate(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return monitor("gate", "-c", "monitor.toml", "--suite", "numbers", "--model", "prod",
                       "--report-json", f"{name}.json", "--report-md", f"{name}.md", *extra,
                       cwd=setup.root, env={"MONITOR_TOKEN": TOKEN})  # fmt: skip

    for name, extra in (("local", ()), ("remote", ("--remote", setup.url))):
        done = smoke_gate(name, "--tier", "smoke", *extra)
        assert done.returncode == 0, done.stderr
        report = json.loads((setup.root / f"{name}.json").read_text())
        assert report["run"]["tier"] == "smoke" and report["baseline"]["id"] == smoke["id"]
        assert report["verdict"]["metrics"][0]["n"] == SMOKE
        assert "numbers on prod, tier smoke, vs baseline run" in report["summary"]
        assert "tier smoke" in (setup.root / f"{name}.md").read_text()
    assert report["run"]["trigger"] == "api"

    no_baseline = smoke_gate("full", "--tier", "full")
    assert no_baseline.returncode == 2
    assert "numbers on prod has no baseline (tier full)" in no_baseline.stderr
    unknown = smoke_gate("nightly", "--tier", "nightly")
    assert unknown.returncode == 2 and "no tier 'nightly' (tiers: full, smoke)" in unknown.stderr
    both = smoke_gate("both", "--tier", "smoke", "--sample", "5")
    assert both.returncode == 2 and "either --sample or --tier" in both.stderr
