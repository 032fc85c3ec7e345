"""Batched case results, run aggregates with operations and slices, on SQLite and
PostgreSQL; and a 10k-case run against a real loopback model that stores every case once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.errors import StoreError
from monitor.records import MetricValue, RunOperations, RunStatus, SliceMetric
from monitor.runs.runner import Runner
from monitor.store import Store
from monitor.store.run_store import RunStore
from monitor.store.tables import case_results
from tests.servers import serve_in_thread
from tests.store.conftest import T0, MakeCases

T1 = T0 + timedelta(minutes=1)

OPERATIONS = RunOperations(
    latency_p50=0.1,
    latency_p90=0.2,
    latency_p95=0.25,
    latency_p99=0.4,
    error_rate=None,
    throughput=120.0,
    prompt_tokens=1200,
    completion_tokens=300,
    cost=0.0042,
    currency="EUR",
)


def test_batches_accumulate_and_finish_counts_them(
    store: Store, start_run: Callable[..., int], make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = make_cases(7, errors=2)
    store.runs.append_cases(run_id, cases[:3])
    store.runs.append_cases(run_id, cases[3:6])
    assert store.runs.count_cases(run_id) == (6, 1)
    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, cases=cases[6:])
    run = store.runs.get_run(run_id)
    assert run is not None and (run.n_cases, run.n_errors) == (7, 2)
    assert [c.case_id for c in store.runs.list_cases(run_id)] == [c.case_id for c in cases]


def test_a_batch_with_a_stored_case_id_is_refused_whole(
    store: Store, start_run: Callable[..., int], make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = make_cases(4)
    store.runs.append_cases(run_id, cases[:2])
    with pytest.raises(StoreError, match=f"storing 2 cases of run {run_id}"):
        store.runs.append_cases(run_id, cases[1:3])
    assert store.runs.count_cases(run_id) == (2, 0)


def test_batches_are_refused_once_the_run_is_final(
    store: Store, start_run: Callable[..., int], make_cases: MakeCases
) -> None:
    run_id = start_run()
    store.runs.finish_run(run_id, status=RunStatus.INTERRUPTED, at=T1, error="stopped")
    with pytest.raises(StoreError, match="is interrupted, not running"):
        store.runs.append_cases(run_id, make_cases(1))
    with pytest.raises(StoreError, match="does not exist"):
        store.runs.append_cases(run_id + 100, make_cases(1))


def test_interrupted_run_keeps_its_partial_cases(
    store: Store, start_run: Callable[..., int], make_cases: MakeCases
) -> None:
    run_id = start_run()
    store.runs.append_cases(run_id, make_cases(5, errors=1))
    store.runs.finish_run(run_id, status=RunStatus.INTERRUPTED, at=T1, error="stopped")
    run = store.runs.get_run(run_id)
    assert run is not None and (run.status, run.n_cases, run.n_errors) == ("interrupted", 5, 1)


def test_operations_slices_details_and_case_fields_round_trip(
    store: Store, start_run: Callable[..., int], make_cases: MakeCases
) -> None:
    run_id = start_run()
    cases = [
        replace(
            case,
            metadata={"segment": "é", "n": 2},
            prompt_tokens=10,
            completion_tokens=3,
            attempts=["a", "b", "a"],
        )
        for case in make_cases(2)
    ]
    metrics = [MetricValue("bleu", 31.5, 28.0, 35.0, 2, "nrefs:1|tok:13a")]
    slices = [
        SliceMetric("segment", "é", "bleu", 31.5, None, None, 2),
        SliceMetric("segment", "x" * 300, "bleu", 10.0, 5.0, 12.0, 1),
    ]
    store.runs.finish_run(
        run_id,
        status=RunStatus.SUCCEEDED,
        at=T1,
        cases=cases,
        metrics=metrics,
        slices=slices,
        operations=OPERATIONS,
    )
    run = store.runs.get_run(run_id)
    assert run is not None
    assert run.operations == replace(OPERATIONS, error_rate=0.0)
    assert run.metrics == tuple(metrics)
    # Ordered by field, value, metric; a slice value is cut to the column's 200 characters.
    assert run.slices == (replace(slices[1], value="x" * 200), slices[0])
    stored = store.runs.list_cases(run_id)[0]
    assert (stored.metadata, stored.prompt_tokens, stored.completion_tokens, stored.attempts) == (
        {"segment": "é", "n": 2},
        10,
        3,
        ["a", "b", "a"],
    )


def test_unknown_cost_stays_unknown(store: Store, start_run: Callable[..., int]) -> None:
    run_id = start_run()
    unknown = replace(OPERATIONS, prompt_tokens=None, completion_tokens=None, cost=None)
    store.runs.append_cases(run_id, [])
    store.runs.finish_run(
        run_id, status=RunStatus.SUCCEEDED, at=T1, operations=unknown, cases=_one_case()
    )
    run = store.runs.get_run(run_id)
    assert run is not None and run.operations is not None
    assert (run.operations.cost, run.operations.prompt_tokens) == (None, None)


def _one_case() -> list[Any]:
    from monitor.records import CaseResult

    return [CaseResult("only", {}, "x", prediction="x")]


async def _echo_model(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI model (no framework): the test measures the runner and the store, so
    the server in the same process should cost as little as possible."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = "yes" if json.loads(body)["x"] % 4 else "no"
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"prediction": answer}).encode()})


@pytest.mark.integration
def test_ten_thousand_case_run_stores_every_case_exactly_once(store: Store, tmp_path: Path) -> None:
    import asyncio

    n = 10_000
    dataset = tmp_path / "cases.jsonl"
    dataset.write_text(
        "".join(
            json.dumps({"id": f"c{i:05d}", "x": i, "segment": f"s{i % 3}", "label": "yes"}) + "\n"
            for i in range(n)
        )
    )
    suite = SuiteConfig.model_validate(
        {
            "name": "big",
            "dataset": str(dataset),
            "task": "classification",
            "metrics": ["accuracy"],
            "models": ["m"],
            "expected": "label",
            "inputs": ["x"],
            "metadata": ["segment"],
            "slices": ["segment"],
        }
    )
    batches: list[int] = []

    class CountingRuns(RunStore):
        def append_cases(self, run_id: int, cases: Any, *, replay: bool = False) -> None:
            batches.append(len(cases))
            super().append_cases(run_id, cases, replay=replay)

    counting = Store.from_engine(store.engine)
    counting.runs = CountingRuns(counting)
    with serve_in_thread(_echo_model) as url:
        model = HttpModelConfig.model_validate(
            {"name": "m", "adapter": "http", "url": f"{url}/predict", "concurrency": 8}
        )

        async def go() -> Any:
            runner = Runner(counting, clock=lambda: T0)
            try:
                return await runner.run(suite, model)
            finally:
                await runner.aclose()

        run = asyncio.run(go())
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert (run.n_cases, run.n_errors) == (n, 0)
    with store.engine.connect() as connection:
        distinct = connection.scalar(
            select(func.count(func.distinct(case_results.c.case_id))).where(
                case_results.c.run_id == run.id
            )
        )
    assert distinct == n
    assert sum(batches) == n and max(batches) <= 500 and len(batches) >= n // 500
    accuracy = {m.name: m for m in run.metrics}["accuracy"]
    assert accuracy.value == pytest.approx(0.75) and accuracy.n == n
    assert {s.value for s in run.slices} == {"s0", "s1", "s2"}
    assert run.operations is not None and run.operations.latency_p50 is not None
    assert run.operations.cost is None
