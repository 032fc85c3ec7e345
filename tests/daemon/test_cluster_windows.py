"""Stream windows shared by ``monitor run`` replicas on one PostgreSQL schema, in one
scenario (a cluster is expensive to start):

1. the leader queues the windows, and while it is paused (SIGSTOP: it keeps the lead, so
   nobody queues new ones) the follower judges the queued ones, taking over the lease of
   the window the leader held (if it held one) once it expired;
2. kill -9 of the replica holding a window's lease: another judges that window after
   the lease expires; every window has exactly one report, judged once, in order.

Which replica judged a window is read from its log line ("stream wine: window ...").
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from sqlalchemy.engine import make_url

from monitor.store import Store
from tests.servers import MonitorProcess, deadline, wait_for
from tests.store.conftest import _postgres_schema_url

pytestmark = pytest.mark.integration

TOKEN = "windows-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROWS = 200
JUDGED = re.compile(r"stream wine: window (rows:\d+-\d+): \w+, drift share")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema; a session idle in a transaction for 2 s is ended by the server,
    as docs/deploy.md advises: a replica paused (SIGSTOP here) inside a transaction
    would otherwise keep its row locks, and its windows could not be taken over."""
    for url in _postgres_schema_url():
        parsed = make_url(url)
        options = f"{parsed.query['options']} -cidle_in_transaction_session_timeout=2000"
        yield parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


def write_config(tmp_path: Path, pg_url: str) -> Path:
    rng = np.random.default_rng(1)
    reference = {
        "ts": ["2024-04-01T00:00:00Z"] * 2000,
        "alcohol": rng.normal(10, 1, 2000),
        "region": rng.choice(["north", "south", "east"], 2000, p=[0.5, 0.3, 0.2]),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[server]
port = 0
tokens = [{{ name = "ci", token = "${{WINDOWS_TOKEN}}", scopes = ["read", "write"] }}]
[store]
url = "{pg_url}"
heartbeat_every = "500ms"
stale_after = "3s"
election_every = "1s"
claim_every = "200ms"
[[streams]]
name = "wine"
timestamp = "ts"
numerical = ["alcohol"]
categorical = ["region"]
reference = {{ file = "{tmp_path / "reference.csv"}" }}
window = {{ rows = {ROWS}, min_rows = 50, backfill = 1000 }}
schedule = {{ every = "1s", run_at_start = true }}
"""
    )
    return path


class Replicas:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.all: list[MonitorProcess] = []

    def start(self) -> tuple[MonitorProcess, str]:
        daemon = MonitorProcess("run", "-c", str(self.config), env={"WINDOWS_TOKEN": TOKEN})
        self.all.append(daemon)
        port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)", timeout=60)
        return daemon, f"http://127.0.0.1:{port.group(1)}"

    def judged(self) -> Counter[str]:
        """How often each window's judging was logged, over every replica."""
        return Counter(m.group(1) for d in self.all for m in JUDGED.finditer(d.output()))

    def judged_by(self, daemon: MonitorProcess) -> list[str]:
        return [m.group(1) for m in JUDGED.finditer(daemon.output())]

    def stop(self) -> None:
        """Stop every replica and print its output (pytest shows it if the test failed)."""
        for daemon in self.all:
            if daemon.proc.poll() is None:
                daemon.proc.send_signal(signal.SIGCONT)
            daemon.stop()
            print(f"--- replica {daemon.proc.pid}:\n{daemon.output()}")


def leads(api: str) -> bool:
    try:
        return bool(httpx.get(f"{api}/readyz", timeout=5).json().get("leader"))
    except httpx.HTTPError:
        return False


def records(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "ts": "2024-05-01T12:00:00Z",
            "alcohol": float(rng.normal(10, 1)),
            "region": str(rng.choice(["north", "south", "east"])),
        }
        for _ in range(n)
    ]


def post(api: str, windows: int, seed: int) -> None:
    answer = httpx.post(
        f"{api}/v1/streams/wine/records",
        json=records(windows * ROWS, seed),
        headers=AUTH,
        timeout=60,
    )
    assert answer.status_code == 201, answer.text


def report_keys(store: Store) -> list[str]:
    """The window keys of every report, in the order they were stored."""
    reports = store.streams.list_drift_reports("wine", limit=1000)
    return [r.window_key for r in reversed(reports)]


def key(index: int) -> str:
    return f"rows:{index * ROWS}-{(index + 1) * ROWS}"


def pid_of(owner: str) -> int:
    return int(owner.rpartition(":")[2])


def queued(store: Store) -> int:
    return sum(c.queued + c.leased for c in store.windows.counts())


def test_replicas_share_stream_windows(tmp_path: Path, pg_url: str) -> None:
    config = write_config(tmp_path, pg_url)
    replicas = Replicas(config)
    store = Store(pg_url)
    try:
        first, first_api = replicas.start()
        wait_for(lambda: leads(first_api), timeout=30, what="the first replica to lead")
        second, second_api = replicas.start()
        pids = {first.proc.pid: first, second.proc.pid: second}

        # 1. The leader queues a batch of windows; caught with windows still queued, it
        # is paused. Tried again with a new batch if it judged the whole batch first.
        total, paused_with = 0, None
        for attempt in range(5):
            post(second_api, 20, seed=attempt)  # the follower takes the records
            total += 20
            wait_for(
                lambda n=total: queued(store) > 0 or len(report_keys(store)) >= n,
                timeout=30,
                what="windows queued by the leader",
                interval=0.005,
            )
            first.proc.send_signal(signal.SIGSTOP)
            if queued(store) > 2:
                paused_with = [lease.key for lease in store.windows.leases()]
                break
            first.proc.send_signal(signal.SIGCONT)
            wait_for(lambda n=total: len(report_keys(store)) >= n, timeout=60, what="the batch")
        assert paused_with is not None, "the leader judged every batch before it was paused"
        before = set(replicas.judged_by(first))
        # The follower judges the rest (after the paused leader's lease expired), still
        # a follower: the paused leader keeps its advisory lock.
        wait_for(
            lambda n=total: len(report_keys(store)) >= n, timeout=60, what="every window judged"
        )
        assert not leads(second_api)
        by_follower = set(replicas.judged_by(second))
        assert by_follower and not by_follower & before
        assert set(paused_with) <= by_follower  # the lease it took over
        assert report_keys(store) == [key(i) for i in range(total)]  # in window order
        assert store.windows.counts() == []

        # 2. kill -9 of the paused leader; a third replica joins. Then kill -9 of whichever
        # replica holds a window's lease mid-batch (replaced by a new one): another judges
        # that window once the lease expired.
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=deadline(10))
        third, _ = replicas.start()
        pids[third.proc.pid] = third
        wait_for(lambda: leads(second_api), timeout=30, what="the follower to lead")
        killed_key, api = None, second_api
        for attempt in range(4):
            post(api, 20, seed=10 + attempt)
            total += 20
            found = wait_for(
                lambda n=total: store.windows.leases() or len(report_keys(store)) >= n,
                timeout=30,
                what="a leased window",
                interval=0.005,
            )
            if isinstance(found, list):
                lease = found[0]
                holder = pids[pid_of(lease.owner)]
                holder.proc.send_signal(signal.SIGKILL)
                holder.proc.wait(timeout=deadline(10))
                if lease in store.windows.leases():  # still held by the dead replica
                    killed_key = lease.key
                replacement, new_api = replicas.start()
                pids[replacement.proc.pid] = replacement
                if holder is second or api != second_api:
                    api = new_api
                if killed_key is not None:
                    break
            wait_for(lambda n=total: len(report_keys(store)) >= n, timeout=60, what="the batch")
        assert killed_key is not None, "no window was caught leased by the replica killed"
        wait_for(
            lambda n=total: len(report_keys(store)) >= n, timeout=60, what="every window judged"
        )
        keys = report_keys(store)
        assert keys == [key(i) for i in range(total)]  # each once, in order
        assert keys.count(killed_key) == 1
        judged = replicas.judged()
        assert [k for k, n in judged.items() if n > 1] == []  # judged once, whoever did
        assert set(judged) == set(keys)
    finally:
        replicas.stop()
        store.close()
