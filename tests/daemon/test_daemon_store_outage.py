"""The daemon (``monitor run``, a subprocess) on a real PostgreSQL that goes away: through
a TCP proxy that refuses new connections and resets the open ones.

- a run in flight when the store goes away ends ``succeeded`` with every case, its scores,
  its baseline and its alert once the store is back, never stays ``running``; the outage is
  two log lines, no traceback;
- slots due while the store is away are created when it is back (within their suite's
  ``misfire_grace``), or counted as skipped;
- a daemon killed with SIGKILL mid-run: another daemon's sweep, not its start, finishes the
  dead run ``interrupted``, while its own run, alive, is never swept.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from monitor.alerts.engine import Phase
from monitor.daemon.recovery import CRASHED
from monitor.records import Run, RunStatus
from monitor.store import Store
from tests.servers import ROOT, MonitorProcess, deadline, serve_in_thread, wait_for
from tests.store.conftest import _postgres_schema_url
from tests.tcp_proxy import FaultyProxy, faulty_proxy

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 15


@dataclass
class Model:
    url: str
    answered: list[float] = field(default_factory=list)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL, dropped afterwards."""
    yield from _postgres_schema_url()


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    """The test's own way into the store: never through the proxy."""
    store = Store(pg_url)
    yield store
    store.close()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FaultyProxy]:
    url = make_url(pg_url)
    with faulty_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def model_server(delay: float) -> Iterator[Model]:
    app = FastAPI()
    model = Model("")

    @app.post("/predict")
    async def predict() -> dict[str, str]:
        await asyncio.sleep(delay)
        model.answered.append(time.monotonic())
        return {"prediction": "class_0"}

    with serve_in_thread(app) as url:
        model.url = url
        yield model


@pytest.fixture
def slow_model() -> Iterator[Model]:
    """200 ms an answer: the 60 cases of the example suite take 12 s, one at a time."""
    yield from model_server(0.2)


@pytest.fixture
def fast_model() -> Iterator[Model]:
    yield from model_server(0.0)


def through(pg_url: str, proxy: FaultyProxy) -> str:
    return make_url(pg_url).set(port=proxy.port).render_as_string(hide_password=False)


def example_config(tmp_path: Path, store_url: str, model: Model, *, extra: str = "") -> Path:
    """The shipped example on a PostgreSQL store with a quick heartbeat, one case at a
    time, once at start (then hourly), with an alert rule that fires on any score."""
    text = (ROOT / "config.example.toml").read_text()
    for old, new in [
        ("port = 8787", "port = 0"),
        (
            'data_dir = "monitor-data"',
            f'url = "{store_url}"\nheartbeat_every = "500ms"\nstale_after = "5s"',
        ),
        ('dataset = "monitor/demo/data', f'dataset = "{ROOT}/monitor/demo/data'),
        ("concurrency = 4", "concurrency = 1"),
        ('every = "30s"', 'every = "1h"'),
        ('jitter = "2s"', 'jitter = "0s"'),
        (
            'url = "${MONITOR_DEMO_MODEL_URL:-http://127.0.0.1:8788}/predict"',
            f'url = "{model.url}/predict"',
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    text += (
        """
[[alerts.rules]]
name = "any-score"
kind = "threshold"
metric = "accuracy"
op = "<"
value = 2.0
"""
        + extra
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def start(config: Path) -> tuple[MonitorProcess, str]:
    daemon = MonitorProcess("run", "-c", str(config))
    port = daemon.wait_for_line(r"HTTP API on http://127\.0\.0\.1:(\d+)").group(1)
    return daemon, f"http://127.0.0.1:{port}"


def stop(daemon: MonitorProcess) -> None:
    daemon.proc.send_signal(signal.SIGTERM)
    try:
        assert daemon.proc.wait(timeout=deadline(15)) == 0
    finally:
        daemon.stop()


def runs(store: Store, status: RunStatus | None = None) -> list[Run]:
    return store.runs.list_runs(status=status, limit=500)


def samples(api: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{api}/metrics", timeout=deadline(10)).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def run_counts(api: str) -> dict[str, float]:
    """Runs by status as /metrics tells them: ``monitor_runs_total`` or, once it is split,
    ``monitor_runs_finished_total`` and the ``monitor_runs`` gauge."""
    counts: dict[str, float] = {}
    for (name, labels), value in samples(api).items():
        if name in ("monitor_runs_total", "monitor_runs_finished_total", "monitor_runs"):
            status = dict(labels)["status"]
            counts[status] = counts.get(status, 0) + value
    return counts


def test_a_run_in_flight_survives_a_store_outage(
    tmp_path: Path, pg_url: str, store: Store, proxy: FaultyProxy, slow_model: Model
) -> None:
    daemon, api = start(example_config(tmp_path, through(pg_url, proxy), slow_model))
    try:
        (run,) = wait_for(lambda: runs(store, RunStatus.RUNNING), timeout=30, what="a run")
        # About 3 s in: the first batches are stored.
        wait_for(lambda: store.runs.count_cases(run.id)[0] >= 10, timeout=30, what="10 cases")
        proxy.down()
        cut = time.monotonic()
        daemon.wait_for_line(r"store unreachable: .*(refused|closed|failed)", timeout=20)
        # The model keeps answering: the run holds its results meanwhile.
        wait_for(lambda: len(slow_model.answered) == 60, timeout=30, what="every answer")
        assert store.runs.get_run(run.id).status is RunStatus.RUNNING  # type: ignore[union-attr]
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut)))  # the fault itself
        proxy.up()
        done = wait_for(
            lambda: (r := store.runs.get_run(run.id)) and r.status is not RunStatus.RUNNING and r,
            timeout=30,
            what="the run to finish",
        )
        assert done.status is RunStatus.SUCCEEDED, done.error
        assert (done.n_cases, done.n_errors) == (60, 0)
        assert {m.name for m in done.metrics} == {"accuracy", "f1"}
        # What follows a run happened too: its baseline, its alert.
        wait_for(
            lambda: store.verdicts.active_baseline(run.suite, run.model),
            timeout=20,
            what="baseline",
        )
        firing = wait_for(
            lambda: [s for s in store.alerts.alert_states() if s.phase is Phase.FIRING],
            timeout=20,
            what="the alert",
        )
        assert [s.rule for s in firing] == ["any-score"]
        counts = run_counts(api)
        assert counts.get("succeeded") == 1 and not counts.get("running"), counts
        stop(daemon)
    finally:
        daemon.stop()
    output = daemon.output()
    assert "Traceback" not in output, output
    assert output.count("store unreachable") == 1, output
    assert output.count("store reachable again") == 1, output
    assert runs(store, RunStatus.RUNNING) == [] and runs(store, RunStatus.QUEUED) == []


SLOT_SUITES = """
[[suites]]
name = "{name}"
dataset = "{dataset}"
task = "classification"
id = "id"
expected = "label"
inputs = ["features"]
metrics = ["accuracy"]
models = ["wine-classifier"]
max_error_rate = 0.5
[suites.schedule]
every = "2s"
misfire_grace = "{grace}"
"""


def test_slots_due_during_an_outage_are_created_after_it_or_counted_skipped(
    tmp_path: Path, pg_url: str, store: Store, proxy: FaultyProxy, fast_model: Model
) -> None:
    dataset = tmp_path / "three.jsonl"
    lines = (ROOT / "monitor/demo/data/wine-test.jsonl").read_text().splitlines()[:3]
    dataset.write_text("\n".join(lines) + "\n")
    extra = SLOT_SUITES.format(name="patient", dataset=dataset, grace="60s")
    extra += SLOT_SUITES.format(name="hasty", dataset=dataset, grace="3s")
    config = example_config(tmp_path, through(pg_url, proxy), fast_model, extra=extra)
    daemon, api = start(config)
    try:
        pairs = [("patient", "wine-classifier"), ("hasty", "wine-classifier")]
        before = samples(api)
        for suite, model in pairs:
            for reason in ("store_unavailable", "misfire", "busy"):
                key = {"suite": suite, "model": model, "reason": reason}
                name = "monitor_schedule_slots_skipped_total"
                assert before[name, frozenset(key.items())] == 0
        for suite, _ in pairs:
            wait_for(
                lambda s=suite: [
                    r for r in runs(store) if r.suite == s and r.status.value != "running"
                ],
                timeout=30,
                what=f"a first run of {suite}",
            )
        proxy.down()
        cut = datetime.now(UTC)
        daemon.wait_for_line(r"store unreachable", timeout=20)
        time.sleep(10)  # the fault itself: five slots of each suite fall due
        proxy.up()
        back = datetime.now(UTC)
        # The store's connection was gone, so was the scheduling lock: the leader (again)
        # queues the slots missed while nobody led.
        line = daemon.wait_for_line(
            r"slots missed while no replica led: (\d+) queued, (\d+) skipped", timeout=30
        )
        created, skipped = int(line.group(1)), int(line.group(2))
        # The catch-up queued every slot up to when it ran, after the replica led again:
        # on a loaded machine that is seconds after the store came back.
        end = datetime.now(UTC)

        def caught_up(suite: str | None, until: datetime) -> dict[tuple[str, datetime], list[Run]]:
            """Runs of ``suite`` (of every suite when None: the example's hourly suite has
            a slot in the outage when it spans the top of an hour) by slot, created at
            their slot's time from the outage to ``until``. A slot may have more than one
            run: on a loaded machine a lease can expire mid-run, and the slot is re-run
            (a new run beside the interrupted one)."""
            slots: dict[tuple[str, datetime], list[Run]] = {}
            for r in runs(store):
                if suite in (None, r.suite) and cut <= r.created_at < until:
                    slots.setdefault((r.suite, r.created_at), []).append(r)
            return slots

        def ran(slots: dict[tuple[str, datetime], list[Run]]) -> bool:
            return all(
                any(r.status is RunStatus.SUCCEEDED for r in found) for found in slots.values()
            )

        def patient_done() -> dict[tuple[str, datetime], list[Run]] | None:
            found = caught_up("patient", end)
            return found if len(found) >= 4 and ran(found) else None

        try:
            patient = wait_for(patient_done, timeout=60, what="the missed slots of 'patient'")
        except AssertionError as timeout:
            found = [(r.id, r.suite, r.status.value, r.created_at.isoformat()) for r in runs(store)]
            raise AssertionError(f"{timeout}: {created} queued, {cut}..{end}: {found}") from None
        # None past its 60 s of grace was left out: a slot every 2 s, no gap.
        times = sorted(at for _, at in patient)
        assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(times)), times
        # Nobody led from the cut until the store came back: every slot of then was queued
        # by the catch-up, and the catch-up queued nothing after it ran.
        assert len(caught_up(None, back)) <= created <= len(caught_up(None, end))
        after = samples(api)

        def skips(suite: str) -> float:
            key = {"suite": suite, "model": "wine-classifier", "reason": "misfire"}
            return after["monitor_schedule_slots_skipped_total", frozenset(key.items())]

        assert skips("patient") == 0
        assert skips("hasty") == skipped >= 2  # slots more than 3 s old when it came back
        wait_for(
            lambda: ran(caught_up("hasty", end)),
            timeout=30,
            what="the missed slots of 'hasty' to run",
        )
        stop(daemon)
    finally:
        daemon.stop()
    output = daemon.output()
    assert "Traceback" not in output, output


def test_the_sweep_reruns_a_killed_daemons_run_and_spares_the_live_rerun(
    tmp_path: Path, pg_url: str, store: Store, slow_model: Model
) -> None:
    config = example_config(tmp_path, pg_url, slow_model)
    first, _ = start(config)
    try:
        (victim,) = wait_for(lambda: runs(store, RunStatus.RUNNING), timeout=30, what="a run")
        first.proc.kill()
        first.proc.wait(timeout=deadline(10))
    finally:
        first.stop()
    second, _ = start(config)
    try:
        # Its start left the dead run alone: only an expired lease, found by a sweep after
        # the store answered for stale_after, interrupts it and queues its slot again.
        assert store.runs.get_run(victim.id).status is RunStatus.RUNNING  # type: ignore[union-attr]
        line = second.wait_for_line(
            rf"sweep: leases without a heartbeat .*: interrupted \[{victim.id}\]"
            rf" \(re-queued as \{{{victim.id}: (\d+)\}}\)"
        )
        rerun_id = int(line.group(1))
        swept = store.runs.get_run(victim.id)
        assert swept is not None and (swept.status, swept.error) == (RunStatus.INTERRUPTED, CRASHED)
        # The re-run, swept at every beat for longer than stale_after, lives on.
        finished = wait_for(
            lambda: (
                (r := store.runs.get_run(rerun_id))
                and r.status.value not in ("queued", "running")
                and r
            ),
            timeout=30,
            what="the re-run to finish",
        )
        assert finished.status is RunStatus.SUCCEEDED and finished.n_cases == 60
        assert finished.created_at == victim.created_at  # the same slot, in its place
        stop(second)
    finally:
        second.stop()
    output = second.output()
    assert "Traceback" not in output
    assert output.count("sweep: leases without a heartbeat") == 1, output
