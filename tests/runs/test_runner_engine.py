"""The runner's streaming engine on a real SQLite store with httpx.MockTransport: batches,
the run deadline, repeats, metadata and slices, tokens and cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.adapters import Prediction
from monitor.adapters.http import HttpAdapter
from monitor.config import HttpModelConfig, SuiteConfig
from monitor.records import Case, CaseResult, RunStatus
from monitor.runs.execution import DEADLINE
from monitor.runs.runner import Runner
from monitor.store import Store
from monitor.store.run_store import RunStore

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


class SpyRuns(RunStore):
    """Records the size of every batch the runner appends."""

    batches: list[int]

    def append_cases(self, run_id: int, cases: Any, *, replay: bool = False) -> None:
        self.batches.append(len(cases))
        super().append_cases(run_id, cases, replay=replay)


class SpyStore(Store):
    runs: SpyRuns

    @property
    def batches(self) -> list[int]:
        return self.runs.batches


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SpyStore]:
    store = SpyStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.runs = SpyRuns(store)
    store.runs.batches = []
    store.upgrade()
    yield store
    store.close()


def _suite(tmp_path: Path, n: int, **extra: Any) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"c{i:03d}", "x": i, "segment": f"s{i % 2}", "label": "yes"}) + "\n"
            for i in range(n)
        )
    )
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            "metadata": ["segment"],
            **extra,
        }
    )


def _model(**extra: Any) -> HttpModelConfig:
    return HttpModelConfig.model_validate(
        {"name": "m", "adapter": "http", "url": "http://model.test/p", **extra}
    )


def _answer(request: httpx.Request) -> httpx.Response:
    x = json.loads(request.content)["x"]
    return httpx.Response(200, json={"prediction": "yes" if x % 2 == 0 else "no"})


async def _run(runner: Runner, suite: SuiteConfig, model: HttpModelConfig) -> Any:
    try:
        return await runner.run(suite, model)
    finally:
        await runner.aclose()


async def test_cases_are_stored_in_batches_with_metadata_and_slices(
    store: SpyStore, tmp_path: Path
) -> None:
    suite = _suite(tmp_path, 23, slices=["segment"])
    progress: list[int] = []
    runner = Runner(store, transport=httpx.MockTransport(_answer), clock=lambda: NOW, batch_size=5)
    try:
        run = await runner.run(suite, _model(), progress=lambda done, total: progress.append(done))
    finally:
        await runner.aclose()
    assert run.status is RunStatus.SUCCEEDED and run.n_cases == 23
    assert sum(store.batches) == 23 and max(store.batches) <= 5 and len(store.batches) >= 5
    assert progress == list(range(1, 24))
    case = store.runs.list_cases(run.id, limit=1)[0]
    assert case.metadata == {"segment": "s0"} and case.input == {"x": 0}
    by_slice = {s.value: s.score for s in run.slices}
    assert by_slice == {"s0": 1.0, "s1": 0.0}
    assert run.operations is not None and run.operations.error_rate == 0.0
    assert run.operations.cost is None and run.operations.prompt_tokens is None


async def test_deadline_records_unanswered_cases_as_timeouts(
    store: SpyStore, tmp_path: Path
) -> None:
    async def slow_after_three(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["x"] >= 3:
            await asyncio.Event().wait()
        return _answer(request)

    suite = _suite(tmp_path, 12, deadline="300ms", max_error_rate=0.5)
    runner = Runner(store, transport=httpx.MockTransport(slow_after_three), clock=lambda: NOW)
    run = await _run(runner, suite, _model(concurrency=2))
    assert run.n_cases == 12 and run.n_errors == 9
    assert run.status is RunStatus.FAILED and "timeout x9" in (run.error or "")
    cases = store.runs.list_cases(run.id)
    assert {c.case_id for c in cases} == {f"c{i:03d}" for i in range(12)}
    late = [c for c in cases if c.error_kind == "timeout"]
    assert len(late) == 9 and all(c.error == DEADLINE for c in late)


async def test_repeats_store_every_attempt_and_reduce_scores(
    store: SpyStore, tmp_path: Path
) -> None:
    calls: dict[int, int] = {}

    def flaky(request: httpx.Request) -> httpx.Response:
        x = json.loads(request.content)["x"]
        calls[x] = calls.get(x, 0) + 1
        return httpx.Response(200, json={"prediction": "yes" if calls[x] != 2 else "no"})

    suite = _suite(tmp_path, 4, repeats=3, reducer="mean")
    run = await _run(
        Runner(store, transport=httpx.MockTransport(flaky), clock=lambda: NOW), suite, _model()
    )
    assert set(calls.values()) == {3}
    case = store.runs.list_cases(run.id)[0]
    assert case.attempts == ["yes", "no", "yes"] and case.prediction == "yes"
    assert case.scores["accuracy"] == pytest.approx(2 / 3)
    assert {m.name: m.value for m in run.metrics}["accuracy"] == pytest.approx(2 / 3)


class CountingAdapter(HttpAdapter):
    """Reports token usage, as an OpenAI-compatible endpoint would."""

    async def _predict(self, case: Case) -> Prediction:
        prediction = await super()._predict(case)
        return Prediction(prediction.value, 0.0, None, prompt_tokens=100, completion_tokens=20)


async def test_cost_comes_from_the_price_table_and_usage(store: SpyStore, tmp_path: Path) -> None:
    model = _model(price={"prompt": 3.0, "completion": 15.0, "per_tokens": 1_000_000})
    runner = Runner(store, clock=lambda: NOW)
    runner._adapters["m"] = CountingAdapter(model, transport=httpx.MockTransport(_answer))
    run = await _run(runner, _suite(tmp_path, 10), model)
    assert run.operations is not None
    assert (run.operations.prompt_tokens, run.operations.completion_tokens) == (1000, 200)
    assert run.operations.cost == pytest.approx((1000 * 3.0 + 200 * 15.0) / 1_000_000)
    assert run.operations.currency == "USD"
    stored: CaseResult = store.runs.list_cases(run.id)[0]
    assert (stored.prompt_tokens, stored.completion_tokens) == (100, 20)


async def test_answers_arriving_together_are_scored_after_every_next_request_went_out(
    store: SpyStore, tmp_path: Path
) -> None:
    """Four answers arrive at once: each of the four workers sends its next request
    before any of the four answers is scored (scoring first would hold back the later
    workers' requests by the earlier answers' scoring)."""
    sent = 0
    gates = [asyncio.Event(), asyncio.Event()]

    async def answer_in_waves(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        wave = gates[(sent - 1) // 4]
        if sent % 4 == 0:
            wave.set()  # the fourth request of a wave releases the whole wave together
        await wave.wait()
        return _answer(request)

    seen_at_scoring: list[int] = []
    runner = Runner(store, transport=httpx.MockTransport(answer_in_waves), clock=lambda: NOW)
    run = await _run_with_progress(
        runner, _suite(tmp_path, 8), _model(concurrency=4), lambda: seen_at_scoring.append(sent)
    )
    assert run.status is RunStatus.SUCCEEDED and run.n_cases == 8
    assert seen_at_scoring[:4] == [8, 8, 8, 8]


async def _run_with_progress(
    runner: Runner, suite: SuiteConfig, model: HttpModelConfig, on_progress: Any
) -> Any:
    try:
        return await runner.run(suite, model, progress=lambda done, total: on_progress())
    finally:
        await runner.aclose()


async def test_interrupted_run_keeps_every_answered_case(store: SpyStore, tmp_path: Path) -> None:
    stuck = asyncio.Event()

    async def hang_from_the_sixth(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["x"] >= 5:
            stuck.set()  # one worker: the five cases before are recorded by now
            await asyncio.Event().wait()
        return _answer(request)

    suite = _suite(tmp_path, 20)
    runner = Runner(
        store, transport=httpx.MockTransport(hang_from_the_sixth), clock=lambda: NOW, batch_size=2
    )
    task = asyncio.create_task(runner.run(suite, _model(concurrency=1)))
    await asyncio.wait_for(stuck.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runner.aclose()
    (run,) = store.runs.list_runs()
    assert run.status is RunStatus.INTERRUPTED
    # Full batches went out while running; the fifth case was still buffered, and it and
    # any batch not yet confirmed are stored (as a replay) when the run is interrupted.
    assert (run.n_cases, run.n_errors) == (5, 0) and store.batches[0] == 2
