"""A run against a store that stops answering: its writes back off and retry, its results
wait in a bounded queue (the model is not asked past the bound), and it either completes
once the store is back or, past ``retry_for``, is stored ``failed`` with the reason as
soon as the store answers. The heartbeat keeps its run alive meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from monitor.config import StoreConfig
from monitor.errors import StoreError, StoreUnavailable
from monitor.records import RunStatus
from monitor.runs.durability import MAX_BACKOFF, GaveUp, StoreRetry, retry_delay
from monitor.runs.heartbeat import Heartbeats
from monitor.runs.outage import StoreOutage
from monitor.runs.runner import Runner
from monitor.store import Store
from monitor.store.run_store import RunStore
from monitor.store.tables import runs
from tests.runs.test_runner_engine import NOW, _answer, _model, _suite
from tests.servers import until


class FlakyRuns(RunStore):
    """The run writes of a :class:`FlakyStore`: they fail as if the server were gone
    while the store is ``down``; every failed call is counted by name."""

    def __init__(self, store: FlakyStore) -> None:
        super().__init__(store)
        self._flaky = store

    def _gate(self, name: str) -> None:
        if self._flaky.down:
            self._flaky.failures[name] = self._flaky.failures.get(name, 0) + 1
            raise StoreUnavailable(f"{name}: OperationalError: connection refused")

    def append_cases(self, run_id: int, cases: Any, *, replay: bool = False) -> None:
        self._gate("append_cases")
        super().append_cases(run_id, cases, replay=replay)

    def finish_run(self, run_id: int, **kwargs: Any) -> None:
        self._gate("finish_run")
        super().finish_run(run_id, **kwargs)

    def touch_runs(self, run_ids: Any, **kwargs: Any) -> list[int]:
        self._gate("touch_runs")
        return super().touch_runs(run_ids, **kwargs)


class FlakyStore(Store):
    """A real SQLite store whose run writes fail while ``down`` is set."""

    down = False
    failures: dict[str, int]

    def _attach(self, engine: Any) -> None:
        super()._attach(engine)
        self.runs = FlakyRuns(self)


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[FlakyStore]:
    store = FlakyStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.failures = {}
    store.upgrade()
    yield store
    store.close()


def test_back_off_doubles_from_100ms_up_to_the_cap_with_jitter() -> None:
    assert [retry_delay(n) for n in range(1, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert retry_delay(30) == MAX_BACKOFF == retry_delay(8)
    assert retry_delay(2, jitter=0.5) == pytest.approx(0.1)
    assert retry_delay(2, jitter=0.1) == pytest.approx(0.1)  # jitter is clamped to [0.5, 1]


async def test_retry_until_the_store_answers_then_give_up_past_retry_for() -> None:
    now = [0.0]
    outage = StoreOutage(clock=lambda: NOW)
    retry = StoreRetry(
        None, retry_for=timedelta(seconds=60), outage=outage, monotonic=lambda: now[0]
    )
    seen: list[int] = []

    def twice_refused(attempt: int) -> str:
        seen.append(attempt)
        if attempt < 2:
            raise StoreUnavailable("connection refused")
        return "stored"

    assert await retry.call(twice_refused) == "stored"
    assert seen == [0, 1, 2] and retry.attempts == 2 and not outage.down

    def refused(attempt: int) -> None:
        now[0] += 40  # each attempt takes 40 s of store outage
        raise StoreUnavailable("connection refused")

    with pytest.raises(GaveUp, match=r"longer than retry_for \(1m\): connection refused"):
        await retry.call(refused)
    assert outage.down

    def refusal(attempt: int) -> None:
        raise StoreError("run 1 is interrupted, not running")

    with pytest.raises(StoreError, match="not running"):  # never retried
        await retry.call(refusal)


async def test_an_outage_holds_at_most_buffer_cases_then_the_run_completes(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    asked: list[int] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        asked.append(1)
        await asyncio.sleep(0.001)  # as a real endpoint, let the loop score meanwhile
        return _answer(request)

    flaky.down = True  # from the first batch on: only create_run got through
    durability = StoreConfig(buffer_cases=4, heartbeat_every="100ms", stale_after="1s")
    runner = Runner(
        flaky,
        transport=httpx.MockTransport(answer),
        clock=lambda: NOW,
        batch_size=2,
        durability=durability,
    )
    task = asyncio.create_task(runner.run(_suite(tmp_path, 40), _model(concurrency=1)))
    # Several retries of the first batch (about 1.5 s): long enough for all 40 instant
    # answers, had the workers not stopped at the bound.
    await until(
        lambda: _value(flaky.failures.get("append_cases", 0) >= 5), timeout=10, what="retries"
    )
    bound = 4 + 2 * 2 + 1  # buffer_cases, a batch filling and one being scored, a worker
    assert len(asked) <= bound, f"the model was asked {len(asked)} times during the outage"
    assert flaky.failures.get("touch_runs", 0) >= 1  # the heartbeat kept trying
    flaky.down = False
    run = await asyncio.wait_for(task, 20)
    await runner.aclose()
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert (run.n_cases, len(asked)) == (40, 40)
    assert [m.name for m in run.metrics] == ["accuracy"]


async def test_past_retry_for_the_run_is_failed_once_the_store_answers(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    flaky.down = True
    runner = Runner(
        flaky,
        transport=httpx.MockTransport(_answer),
        clock=lambda: NOW,
        batch_size=2,
        durability=StoreConfig(retry_for="300ms", buffer_cases=4),
    )
    task = asyncio.create_task(runner.run(_suite(tmp_path, 10), _model(concurrency=1)))
    # It gave up on its writes and now retries its last one, the failure, until the end.
    await until(
        lambda: _value(flaky.failures.get("finish_run", 0) >= 2), timeout=10, what="gave up"
    )
    flaky.down = False
    run = await asyncio.wait_for(task, 20)
    await runner.aclose()
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "the store was unreachable for longer than retry_for (300ms)" in run.error
    assert "case result(s) were not stored" in run.error


async def test_heartbeats_refresh_held_runs_until_released(flaky: FlakyStore) -> None:
    run_id = flaky.runs.create_run(
        suite="s", model="m", trigger="t", dataset_sha256="", config_hash="", at=NOW
    )
    later = NOW + timedelta(minutes=5)
    beats = Heartbeats(flaky, every=timedelta(milliseconds=50), clock=lambda: later)
    beats.hold([run_id])
    beats.hold([run_id])
    beats.release([run_id])  # held twice, released once: still held
    await until(lambda: _value(heartbeat(flaky, run_id) == later), timeout=5, what="a beat")
    assert flaky.runs.interrupt_stale(before=NOW + timedelta(minutes=1), reason="x", at=later) == []
    beats.release([run_id])
    assert beats.held == []
    await beats.aclose()
    run = flaky.runs.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING


def heartbeat(store: Store, run_id: int) -> object:
    with store.engine.connect() as connection:
        return connection.scalar(select(runs.c.heartbeat_at).where(runs.c.id == run_id))


async def _value(result: object) -> object:
    return result
