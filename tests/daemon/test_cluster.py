"""Three ``monitor run`` replicas on one PostgreSQL schema, a suite every 2 s, in one
scenario (a cluster is expensive to start):

1. steady state for two minutes (60 slots): every slot is run exactly once, whichever
   replica executes it, none skipped as busy (the model answers at once); one replica
   leads (``monitor_replica_info`` says ``leader="false"`` on the others);
2. meanwhile the model turns bad, then good again: the webhook gets one ``firing`` and
   one ``resolved``, in that order;
3. kill -9 of the leader: another replica leads within about ``election_every`` (the
   advisory lock goes with the killed session; the handover time is measured and
   printed), no slot is lost or doubled;
4. kill -9 of a replica mid-run: after its lease expires the run is interrupted and its
   slot re-run (same slot, ``retry_of`` in the store) by another replica;
5. a rolling restart of every replica (SIGTERM, then a new one) interrupts nothing.

After the steady state, slots skipped because the previous run was still going (each
logged with its slot time) are the only gaps allowed: the killed replica's run holds its
slot's successors until its lease expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from monitor.records import RunStatus
from monitor.store import Store
from monitor.store.requests import QueuedRun
from monitor.store.tables import runs
from tests.servers import ROOT, MonitorProcess, deadline, serve_in_thread, wait_for
from tests.store.conftest import _postgres_schema_url

pytestmark = pytest.mark.integration

KEY = b"cluster-test-signing-key-32-byte"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
EVERY = timedelta(seconds=2)
ELECTION_EVERY = timedelta(seconds=1)
STEADY_SLOTS = 60  # two minutes of a 2 s schedule
TOKEN = "cluster-test-token-0123456789abcdef"
BUSY = re.compile(r"slot (\S+) skipped, the previous run is still going")


@dataclass
class Model:
    """Answers ``class_0`` (right for the dataset) or ``class_9`` (wrong); ``slow``
    makes each answer take 1 s, so a run can be caught mid-flight."""

    url: str = ""
    bad: bool = False
    slow: bool = False


@dataclass
class Hook:
    events: list[tuple[int, str]] = field(default_factory=list)  # (sequence, status)
    ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def model() -> Iterator[Model]:
    state = Model()
    app = FastAPI()

    @app.post("/predict")
    async def predict() -> dict[str, str]:
        if state.slow:
            import asyncio

            await asyncio.sleep(1.0)
        return {"prediction": "class_9" if state.bad else "class_0"}

    with serve_in_thread(app) as url:
        state.url = url
        yield state


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    state = Hook()
    app = FastAPI()

    @app.post("/hook")
    async def receive(request: Request) -> Response:
        body = await request.body()
        mid, ts = request.headers["webhook-id"], request.headers["webhook-timestamp"]
        digest = hmac.new(KEY, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()
        if request.headers["webhook-signature"] != "v1," + base64.b64encode(digest).decode():
            return Response(status_code=401)
        payload = json.loads(body)
        with state.lock:
            state.ids.append(mid)
            state.events.append((payload["sequence"], payload["alert"]["status"]))
        return Response(status_code=204)

    with serve_in_thread(app) as url:
        yield state, f"{url}/hook"


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def write_config(tmp_path: Path, pg_url: str, model_url: str, hook_url: str) -> Path:
    dataset = tmp_path / "two.jsonl"
    lines = (ROOT / "monitor/demo/data/wine-test.jsonl").read_text().splitlines()[:2]
    assert all('"label": "class_0"' in line for line in lines)
    dataset.write_text("\n".join(lines) + "\n")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
shutdown_grace = "15s"
[store]
url = "{pg_url}"
heartbeat_every = "500ms"
stale_after = "3s"
election_every = "{ELECTION_EVERY.total_seconds():g}s"
claim_every = "200ms"
[[models]]
name = "m"
adapter = "http"
url = "{model_url}/predict"
body = {{ features = "{{{{features}}}}" }}
prediction = "prediction"
concurrency = 1
[[suites]]
name = "s"
dataset = "{dataset}"
task = "classification"
id = "id"
expected = "label"
inputs = ["features"]
metrics = ["accuracy"]
models = ["m"]
max_error_rate = 0.5
[suites.schedule]
every = "2s"
misfire_grace = "30s"
[alerts]
evaluate_every = "1h"
[alerts.delivery]
backoff = "100ms"
max_backoff = "300ms"
poll_interval = "100ms"
[[alerts.rules]]
name = "bad"
kind = "threshold"
metric = "accuracy"
op = "<"
value = 0.5
[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{hook_url}"
secret = "${{HOOK_SECRET}}"
"""
    )
    return path


class Cluster:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.replicas: list[tuple[MonitorProcess, str]] = []
        self.gone: list[MonitorProcess] = []

    def start(self) -> tuple[MonitorProcess, str]:
        daemon = MonitorProcess("run", "-c", str(self.config), env={"HOOK_SECRET": SECRET})
        port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)", timeout=60)
        entry = (daemon, f"http://127.0.0.1:{port.group(1)}")
        self.replicas.append(entry)
        return entry

    def leader(self) -> tuple[MonitorProcess, str] | None:
        for daemon, api in self.replicas:
            try:
                if httpx.get(f"{api}/readyz", timeout=2).json().get("leader"):
                    return daemon, api
            except httpx.HTTPError:
                continue
        return None

    def remove(self, daemon: MonitorProcess) -> None:
        self.replicas = [(d, a) for d, a in self.replicas if d is not daemon]
        self.gone.append(daemon)

    def busy_slots(self) -> set[datetime]:
        every = [d for d, _ in self.replicas] + self.gone
        return {
            datetime.fromisoformat(m.group(1))
            for d in every
            for line in d.output().splitlines()
            if (m := BUSY.search(line))
        }

    def stop(self) -> None:
        for daemon in [d for d, _ in self.replicas] + self.gone:
            daemon.stop()


def live_runs(store: Store) -> list[tuple[int, datetime, str, int | None]]:
    """(id, slot, status, retry_of) of every scheduled run, oldest slot first."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(runs.c.id, runs.c.slot_at, runs.c.status, runs.c.retry_of)
            .where(runs.c.trigger == "schedule")
            .order_by(runs.c.slot_at, runs.c.id)
        ).all()
    return [(r.id, r.slot_at, r.status, r.retry_of) for r in rows]


def slowest(store: Store, slots: list[datetime]) -> float:
    """The longest a scheduled run of ``slots`` took from its slot time to its end."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(runs.c.slot_at, runs.c.finished_at).where(
                runs.c.trigger == "schedule", runs.c.slot_at.in_(slots)
            )
        ).all()
    return max((r.finished_at - r.slot_at).total_seconds() for r in rows)


def succeeded_slots(store: Store) -> list[datetime]:
    return [slot for _, slot, status, _ in live_runs(store) if status == "succeeded"]


def assert_each_slot_once(store: Store, cluster: Cluster, since: datetime) -> None:
    """Up to the newest finished slot: every slot after ``since`` has exactly one run
    that was not interrupted, unless it was skipped as busy."""
    rows = live_runs(store)
    done = [slot for _, slot, status, _ in rows if status == "succeeded"]
    live = Counter(slot for _, slot, status, _ in rows if status != "interrupted")
    doubled = [slot for slot, n in live.items() if n > 1]
    assert not doubled, f"slots run twice: {doubled}"
    busy = cluster.busy_slots()
    slot, missing = since + EVERY, []
    while slot <= max(done):
        if slot not in live and slot not in busy:
            missing.append(slot)
        slot += EVERY
    assert not missing, f"slots lost: {missing}; runs: {rows}"


def wait_for_runs(store: Store, n: int, *, what: str, timeout: float = 60) -> list[datetime]:
    start = len(succeeded_slots(store))
    return wait_for(
        lambda: (found := succeeded_slots(store)) and len(found) >= start + n and found,
        timeout=timeout,
        what=what,
    )


def test_three_replicas_share_one_schedule(
    tmp_path: Path, pg_url: str, model: Model, hook: tuple[Hook, str]
) -> None:
    received, hook_url = hook
    cluster = Cluster(write_config(tmp_path, pg_url, model.url, hook_url))
    store = Store(pg_url)
    try:
        cluster.start()  # migrates the schema
        cluster.start()
        cluster.start()

        # 1. and 2. Steady state: 60 slots in a row, each run once, none skipped as busy,
        # while the model turns bad and good again (one firing, then one resolved, in
        # order, however many replicas judged).
        before = len(succeeded_slots(store))
        model.bad = True
        wait_for(lambda: received.events, timeout=30, what="the firing notification")
        model.bad = False
        wait_for(lambda: len(received.events) >= 2, timeout=30, what="the resolved one")
        _, leader_api = wait_for(cluster.leader, timeout=30, what="a leader")
        for _, api in cluster.replicas:
            if api != leader_api:
                exposition = httpx.get(f"{api}/metrics").text
                follower = r'monitor_replica_info\{leader="false",replica="[^"]+:\d+"\} 1'
                assert re.search(follower, exposition), exposition
        steady = wait_for(
            lambda: len(found := succeeded_slots(store)) >= before + STEADY_SLOTS and found,
            timeout=STEADY_SLOTS * EVERY.total_seconds() + 60,
            what=f"{STEADY_SLOTS} slots with three replicas",
        )[before : before + STEADY_SLOTS]
        gaps = [(a, b) for a, b in itertools.pairwise(steady) if b - a != EVERY]
        busy = sorted(s for s in cluster.busy_slots() if steady[0] <= s <= steady[-1])
        assert (gaps, busy) == ([], []), f"slots lost or skipped as busy: {gaps}, {busy}"
        assert_each_slot_once(store, cluster, steady[0] - EVERY)
        late = slowest(store, steady)
        print(f"steady state: {STEADY_SLOTS} slots, the slowest done {late:.2f} s after its slot")
        first = steady[0]

        # 3. kill -9 of the leader (between its runs: its own run would hold the slot
        # after it, as any run still going does).
        leader, _ = wait_for(cluster.leader, timeout=30, what="a leader")
        lease_owners = lambda: {lease.owner for lease in store.queue.leases()}  # noqa: E731
        wait_for(
            lambda: not any(o.endswith(f":{leader.proc.pid}") for o in lease_owners()),
            timeout=30,
            what="the leader to hold no lease",
        )
        leader.proc.kill()
        killed_at = time.monotonic()
        cluster.remove(leader)
        _, new_api = wait_for(cluster.leader, timeout=15, what="a new leader", interval=0.01)
        handover = time.monotonic() - killed_at
        every = ELECTION_EVERY.total_seconds()
        print(f"leader handover after kill -9: {handover:.2f} s (election_every {every:g} s)")
        # A follower tries the lock every election_every and PostgreSQL frees it with the
        # killed session: the margin is for a follower's attempt and the /readyz poll.
        bound = every + deadline(2)
        assert handover <= bound, f"handover took {handover:.2f} s, more than {bound:g} s"
        exposition = httpx.get(f"{new_api}/metrics").text
        assert re.search(r'monitor_replica_info\{leader="true",replica="[^"]+:\d+"\} 1', exposition)
        wait_for_runs(store, 3, what="three slots after the new leader")

        # 4. kill -9 of a replica mid-run: its slot is re-run after the lease expires.
        model.slow = True
        victim_lease = wait_for(
            lambda: [lease for lease in store.queue.leases() if lease.status.value == "running"],
            timeout=30,
            what="a run in flight",
        )[0]
        pid = int(victim_lease.owner.rsplit(":", 1)[1])
        (victim,) = [d for d, _ in cluster.replicas if d.proc.pid == pid]
        victim.proc.send_signal(signal.SIGKILL)
        cluster.remove(victim)
        model.slow = False

        def rerun() -> tuple[int, datetime, str, int | None] | None:
            rows = live_runs(store)
            return next((r for r in rows if r[3] == victim_lease.id and r[2] == "succeeded"), None)

        _, rerun_slot, _, _ = wait_for(rerun, timeout=60, what="the re-run of the killed run")
        interrupted = store.runs.get_run(victim_lease.id)
        assert interrupted is not None and interrupted.status is RunStatus.INTERRUPTED
        assert rerun_slot == next(s for i, s, *_ in live_runs(store) if i == victim_lease.id)

        # 5. Rolling restart: back to three, then each replaced in turn.
        cluster.start()
        cluster.start()
        restart_from = len(live_runs(store))
        for daemon, _ in list(cluster.replicas):
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(timeout=deadline(30)) == 0, daemon.output()
            cluster.remove(daemon)
            cluster.start()
            wait_for_runs(store, 1, what="a slot after a restart")
        wait_for_runs(store, 2, what="slots after the rolling restart")
        during = live_runs(store)[restart_from:]
        assert [r for r in during if r[2] == "interrupted"] == [], during

        assert_each_slot_once(store, cluster, first - EVERY)
        shown = subprocess.run(
            [sys.executable, "-m", "monitor", "status", "-c", str(cluster.config), "--json"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HOOK_SECRET": SECRET},
            timeout=deadline(60),
        )
        state = json.loads(shown.stdout)
        names = sorted(r["name"] for r in state["replicas"])
        assert names == sorted(f"{socket.gethostname()}:{d.proc.pid}" for d, _ in cluster.replicas)
        assert [r["name"] for r in state["replicas"] if r["leader"]] == [state["leader"]]
        with received.lock:
            assert [status for _, status in received.events] == ["firing", "resolved"]
            assert sorted(received.events) == received.events  # sequences in order
            assert len(set(received.ids)) == len(received.ids)
        for daemon in [d for d, _ in cluster.replicas] + cluster.gone:
            assert "Traceback" not in daemon.output(), daemon.output()
    finally:
        cluster.stop()
        store.close()


def test_a_claimed_api_run_of_a_model_this_replica_lacks_fails_with_the_reason(
    tmp_path: Path, pg_url: str, model: Model
) -> None:
    """Replicas whose configurations differ: another replica's API queued a run of suite
    ``s`` on its model ``m2`` (the request stored as ``POST /v1/runs`` stores it); this
    replica, which has ``s`` but not ``m2``, claims it and fails it, saying why, rather
    than leaving it queued or running something else."""
    dataset = tmp_path / "two.jsonl"
    lines = (ROOT / "monitor/demo/data/wine-test.jsonl").read_text().splitlines()[:2]
    dataset.write_text("\n".join(lines) + "\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[server]
port = 0
tokens = [{{ name = "ci", token = "${{CI_TOKEN}}", scopes = ["read", "write"] }}]
[store]
url = "{pg_url}"
claim_every = "200ms"
[[models]]
name = "m"
adapter = "http"
url = "{model.url}/predict"
body = {{ features = "{{{{features}}}}" }}
prediction = "prediction"
[[suites]]
name = "s"
dataset = "{dataset}"
task = "classification"
id = "id"
expected = "label"
inputs = ["features"]
metrics = ["accuracy"]
models = ["m"]
"""
    )
    daemon = MonitorProcess("run", "-c", str(config), env={"CI_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    store = Store(pg_url)
    try:
        port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)", timeout=60)
        api = f"http://127.0.0.1:{port.group(1)}"
        # Its own API refuses the model up front...
        asked = httpx.post(
            f"{api}/v1/runs",
            json={"benchmarkId": "s", "models": [{"id": "m2"}]},
            headers=auth,
            timeout=10,
        )
        assert asked.status_code == 422, asked.text
        # ... but another replica, which has it, may have queued it.
        (run_id,) = store.runs.create_run_request(
            request_id="req-from-another-replica",
            suite="s",
            models=[{"id": "m2", "model": "m2", "endpoint": None}],
            sample=None,
            baseline=None,
            requested_by="ci",
            at=datetime.now(UTC),
            runs=[QueuedRun("m2", "c" * 64)],
        )
        status = f"{api}/v1/runs/req-from-another-replica"
        answer = wait_for(
            lambda: (
                (r := httpx.get(status, headers=auth).json())["status"] in ("failed", "completed")
                and r
            ),
            timeout=30,
            what="the claimed run to end",
        )
        reason = "this replica's configuration has no suite 's' with model 'm2'"
        assert answer["status"] == "failed" and reason in answer["error"], answer
        run = store.runs.get_run(run_id)
        assert run is not None and run.status is RunStatus.FAILED
        assert run.error is not None and run.error.startswith(reason), run.error
        planned = "models[0].id: unknown model 'm2': not in the configuration"
        assert run.error.startswith(f"{reason}: {planned}"), run.error
        assert "\n" not in run.error and "value_error" not in run.error, run.error
        daemon.wait_for_line(rf"run {run_id} failed: {re.escape(reason)}")
    finally:
        daemon.stop()
        store.close()
