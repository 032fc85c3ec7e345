"""The runner end to end on a real SQLite store, with the endpoint simulated by
httpx.MockTransport: scoring, error kinds, the error budget, interruption."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.errors import StoreError
from monitor.records import RunStatus
from monitor.runs.runner import INTERRUPTED, Runner
from monitor.store import Store

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
LABELS = ["a", "b", "a", "c", "a", "b", "a", "a", "b", "c"]


@pytest.fixture
def suite(tmp_path: Path) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "x": i, "label": label}) + "\n"
            for i, label in enumerate(LABELS)
        )
    )
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "classification",
            "metrics": ["accuracy", "exact-match"],
            "models": ["m"],
            "expected": "label",
            "max_error_rate": 0.2,
        }
    )


MODEL = HttpModelConfig.model_validate(
    {"name": "m", "adapter": "http", "url": "http://model.test/p"}
)


def answering(
    wrong: set[int] = frozenset(), fail: Callable[[int], httpx.Response | None] = lambda i: None
) -> httpx.MockTransport:  # type: ignore[assignment]
    def handler(request: httpx.Request) -> httpx.Response:
        i = json.loads(request.content)["x"]
        failure = fail(i)
        if failure is not None:
            return failure
        return httpx.Response(200, json={"prediction": "zzz" if i in wrong else LABELS[i]})

    return httpx.MockTransport(handler)


async def run_with(store: Store, suite: SuiteConfig, transport: httpx.AsyncBaseTransport) -> Any:
    runner = Runner(store, transport=transport, clock=lambda: NOW)
    try:
        return await runner.run(suite, MODEL)
    finally:
        await runner.aclose()


async def test_successful_run_stores_scores_and_cases(store: Store, suite: SuiteConfig) -> None:
    run = await run_with(store, suite, answering(wrong={1, 4}))
    assert run.status is RunStatus.SUCCEEDED and run.error is None
    assert run.n_cases == 10 and run.n_errors == 0 and len(run.dataset_sha256) == 64
    accuracy = {m.name: m for m in run.metrics}["accuracy"]
    assert accuracy.value == pytest.approx(0.8) and accuracy.n == 10
    assert accuracy.lower is not None and accuracy.lower < 0.8 < (accuracy.upper or 0)
    cases = {c.case_id: c for c in store.runs.list_cases(run.id)}
    assert cases["c1"].scores == {"accuracy": 0.0, "exact-match": 0.0}
    assert cases["c0"].prediction == "a" and cases["c0"].scores["accuracy"] == 1.0
    assert cases["c0"].input == {"x": 0}


async def test_errors_within_budget_are_kept_out_of_scores(
    store: Store, suite: SuiteConfig
) -> None:
    run = await run_with(
        store, suite, answering(fail=lambda i: httpx.Response(500) if i == 3 else None)
    )
    assert run.status is RunStatus.SUCCEEDED and run.n_errors == 1
    assert {m.name: m for m in run.metrics}["accuracy"].n == 9
    failed = next(c for c in store.runs.list_cases(run.id) if c.case_id == "c3")
    assert failed.error_kind == "http_status" and failed.scores == {} and failed.prediction is None


async def test_error_budget_exceeded_fails_with_reason(store: Store, suite: SuiteConfig) -> None:
    run = await run_with(
        store, suite, answering(fail=lambda i: httpx.Response(503) if i < 3 else None)
    )
    assert run.status is RunStatus.FAILED
    assert run.error.startswith(
        "error rate 30% (3 of 10 cases) exceeds max_error_rate 20%: http_status x3"
    )
    assert run.metrics == () and run.n_errors == 3
    assert store.runs.latest_scores() == []


async def test_unreadable_dataset_is_a_failed_run(store: Store, suite: SuiteConfig) -> None:
    suite.dataset.write_text("not json\n")
    run = await run_with(store, suite, answering())
    assert run.status is RunStatus.FAILED and "not valid JSON" in (run.error or "")


async def test_cancelled_run_is_stored_interrupted(store: Store, suite: SuiteConfig) -> None:
    arrived = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError

    runner = Runner(store, transport=httpx.MockTransport(handler), clock=lambda: NOW)
    task = asyncio.create_task(runner.run(suite, MODEL))
    await asyncio.wait_for(arrived.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runner.aclose()
    (run,) = store.runs.list_runs()
    assert run.status is RunStatus.INTERRUPTED and run.error == INTERRUPTED


async def test_queued_run_is_started_then_finished(store: Store, suite: SuiteConfig) -> None:
    queued = store.runs.create_run(
        suite="s",
        model="m",
        trigger="api",
        dataset_sha256="",
        config_hash="queued-hash",
        at=NOW,
        status=RunStatus.QUEUED,
    )
    runner = Runner(store, transport=answering(wrong={0}), clock=lambda: NOW)
    try:
        run = await runner.run(suite, MODEL, run_id=queued)
        assert run.id == queued and run.status is RunStatus.SUCCEEDED
        assert run.trigger == "api" and run.started_at == NOW and len(run.dataset_sha256) == 64
        assert {m.name: m.value for m in run.metrics}["accuracy"] == pytest.approx(0.9)
        assert [r.id for r in store.runs.list_runs()] == [queued]  # no second run was created
        with pytest.raises(StoreError, match=f"run {queued} is succeeded, not queued"):
            await runner.run(suite, MODEL, run_id=queued)
    finally:
        await runner.aclose()


async def test_an_endpoint_override_gets_its_own_adapter(store: Store, suite: SuiteConfig) -> None:
    moved = MODEL.model_copy(update={"url": "http://elsewhere.test/p"})
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(200, json={"prediction": LABELS[json.loads(request.content)["x"]]})

    runner = Runner(store, transport=httpx.MockTransport(handler), clock=lambda: NOW)
    try:
        await runner.run(suite, MODEL)
        configured = runner._adapter(MODEL)
        await runner.run(suite, moved)
        await runner.run(suite, MODEL)
        assert runner._adapter(MODEL) is configured  # not replaced by the override's
        assert runner._adapter(moved) is not configured
    finally:
        await runner.aclose()
    assert hosts == ["model.test"] * 10 + ["elsewhere.test"] * 10 + ["model.test"] * 10
