"""The runner takes its cases from the dataset as it goes: it never reads more than a bounded
look-ahead beyond the cases answered, reads the rest through at the deadline, fails the run
when the file changes under it, and closes the file when stopped. On a real SQLite store
with httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import monitor.runs.runner
from monitor.config import HttpModelConfig, SuiteConfig
from monitor.errors import DatasetError
from monitor.records import Case, RunStatus
from monitor.runs.case_feed import CHUNK, CaseFeed
from monitor.runs.datasets import DatasetStream, open_dataset
from monitor.runs.execution import DEADLINE
from monitor.runs.runner import Runner
from monitor.store import Store

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def _suite(tmp_path: Path, n: int, **extra: Any) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    with path.open("w") as out:
        for i in range(n):
            out.write(json.dumps({"id": f"c{i:05d}", "x": i, "label": "yes"}) + "\n")
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            **extra,
        }
    )


def _model(concurrency: int) -> HttpModelConfig:
    return HttpModelConfig.model_validate(
        {"name": "m", "adapter": "http", "url": "http://model.test/p", "concurrency": concurrency}
    )


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"prediction": "yes"})


@dataclass
class Counted:
    """A dataset stream whose cases are counted as they are read, and whose reading is
    seen to end (the file closed)."""

    stream: DatasetStream
    answered: int = 0
    read: int = 0
    ahead: list[int] = field(default_factory=list)
    closed: bool = False

    @property
    def sha256(self) -> str:
        return self.stream.sha256

    @property
    def size(self) -> int:
        return self.stream.size

    def cases(self) -> Generator[Case, None, None]:
        try:
            for case in self.stream.cases():
                self.read += 1
                self.ahead.append(self.read - self.answered)
                yield case
        finally:
            self.closed = True


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Counted]:
    opened: list[Counted] = []

    def open_counted(suite: SuiteConfig) -> Counted:
        opened.append(Counted(open_dataset(suite)))
        return opened[-1]

    monkeypatch.setattr(monitor.runs.runner, "open_dataset", open_counted)
    return opened


async def test_a_20k_case_run_reads_the_dataset_a_bounded_step_ahead(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _counting(monkeypatch)
    concurrency, n = 8, 20_000
    runner = Runner(store, transport=httpx.MockTransport(_answer), clock=lambda: NOW)

    def answered(done: int, total: int) -> None:
        assert total == n
        opened[0].answered = done

    try:
        run = await runner.run(_suite(tmp_path, n), _model(concurrency), progress=answered)
    finally:
        await runner.aclose()
    assert run.status is RunStatus.SUCCEEDED and (run.n_cases, run.n_errors) == (n, 0)
    (counted,) = opened
    assert counted.read == n and counted.closed
    # Read ahead of the answers: the cases being asked plus the feed's look-ahead, never
    # the dataset. Holding it whole would read all 20,000 before the first answer.
    bound = concurrency + 96  # a chunk of 64 and half a chunk, as documented
    assert CaseFeed(iter_cases([])).lookahead == 96
    assert max(counted.ahead) <= bound, max(counted.ahead)
    assert store.runs.count_cases(run.id) == (n, 0)


def iter_cases(cases: list[Case]) -> Generator[Case, None, None]:
    yield from cases


async def test_the_deadline_reads_the_rest_of_the_file_as_timeouts(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _counting(monkeypatch)

    async def slow_after_three(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["x"] >= 3:
            await asyncio.Event().wait()
        return _answer(request)

    n = 10 * CHUNK
    suite = _suite(tmp_path, n, deadline="300ms", max_error_rate=0.999)
    runner = Runner(store, transport=httpx.MockTransport(slow_after_three), clock=lambda: NOW)
    try:
        run = await runner.run(suite, _model(2))
    finally:
        await runner.aclose()
    assert (run.n_cases, run.n_errors) == (n, n - 3)
    assert opened[0].read == n and opened[0].closed
    cases = store.runs.list_cases(run.id, limit=n + 1)
    assert sorted(c.case_id for c in cases) == [f"c{i:05d}" for i in range(n)]
    assert sum(c.error == DEADLINE for c in cases) == n - 3


async def test_a_file_changed_during_the_run_fails_it_with_the_reason(
    store: Store, tmp_path: Path
) -> None:
    suite = _suite(tmp_path, 2000)
    path = suite.dataset
    changed = False

    def change_once(request: httpx.Request) -> httpx.Response:
        nonlocal changed
        if not changed:  # rewrite the last row in place, size and mtime kept
            changed = True
            stat = path.stat()
            data = path.read_bytes()
            with path.open("r+b") as out:
                out.write(data.replace(b'"c01999", "x": 1999', b'"c01999", "x": 1998'))
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return _answer(request)

    runner = Runner(store, transport=httpx.MockTransport(change_once), clock=lambda: NOW)
    try:
        run = await runner.run(suite, _model(4))
    finally:
        await runner.aclose()
    assert changed and run.status is RunStatus.FAILED
    assert run.error is not None and "changed while the run was reading it" in run.error
    assert "internal error" not in run.error
    assert store.runs.count_cases(run.id)[0] == 2000  # answered before the end, and kept


async def test_a_bad_row_fails_the_run_before_any_case_is_asked(
    store: Store, tmp_path: Path
) -> None:
    suite = _suite(tmp_path, 5000)
    with suite.dataset.open("a") as out:
        out.write('{"id": "late", "x": 1}\n')
    asked: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return _answer(request)

    runner = Runner(store, transport=httpx.MockTransport(record), clock=lambda: NOW)
    try:
        run = await runner.run(suite, _model(4))
    finally:
        await runner.aclose()
    assert run.status is RunStatus.FAILED and asked == []
    assert run.error == f"{suite.dataset}:5001: no field 'label' (the suite's 'expected')"
    assert store.runs.count_cases(run.id) == (0, 0)


async def test_a_cancelled_run_closes_the_dataset(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _counting(monkeypatch)
    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError

    runner = Runner(store, transport=httpx.MockTransport(hang), clock=lambda: NOW)
    task = asyncio.create_task(runner.run(_suite(tmp_path, 1000), _model(4)))
    await asyncio.wait_for(arrived.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runner.aclose()
    deadline = time.monotonic() + 10
    while not opened[0].closed:  # closed at once, or when the read under way ends
        assert time.monotonic() < deadline, "the dataset was not closed"
        await asyncio.sleep(0.01)
    assert opened[0].read < 1000


# -- the feed on its own ------------------------------------------------------------------


def _cases(n: int) -> list[Case]:
    return [Case(f"c{i}", {"x": i}, "yes") for i in range(n)]


async def test_the_feed_hands_out_every_case_once_in_order_to_concurrent_workers() -> None:
    feed = CaseFeed(iter_cases(_cases(1000)), chunk=16)
    taken: list[str] = []

    async def worker() -> None:
        while (case := await feed.next()) is not None:
            taken.append(case.id)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(7)))
    assert taken == [f"c{i}" for i in range(1000)]
    assert await feed.next() is None
    feed.close()


async def test_a_dataset_error_ends_the_feed_after_the_cases_read_before_it() -> None:
    def failing() -> Generator[Case, None, None]:
        yield from _cases(20)
        raise DatasetError("d.jsonl:21: not valid JSON")

    feed = CaseFeed(failing(), chunk=8)
    counts = await asyncio.gather(*(_drain(feed) for _ in range(3)))
    assert sum(counts) == 20 and await feed.next() is None
    assert isinstance(feed.error, DatasetError) and "d.jsonl:21" in str(feed.error)
    feed.close()


async def _drain(feed: CaseFeed) -> int:
    count = 0
    while await feed.next() is not None:
        count += 1
    return count


async def test_closing_during_a_read_closes_the_dataset_when_the_read_ends() -> None:
    entered, release, closed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow() -> Generator[Case, None, None]:
        try:
            yield from _cases(3)
            loop.call_soon_threadsafe(entered.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
            yield from _cases(3)
        finally:
            loop.call_soon_threadsafe(closed.set)

    feed = CaseFeed(slow(), chunk=4)
    waiting = asyncio.create_task(feed.next())
    await asyncio.wait_for(entered.wait(), 10)  # the read thread is inside the generator
    waiting.cancel()
    feed.close()  # closing the generator now would raise "generator already executing"
    assert not closed.is_set()
    release.set()
    await asyncio.wait_for(closed.wait(), 10)
