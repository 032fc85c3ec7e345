"""Scoring and the statistics it feeds, end to end against a loopback model: CPU-bound
metrics are scored in worker processes without holding the model's requests nor reaching
their stored latency, and give the numbers in-process scoring gives; the same answers give
the same numbers (intervals, slices, verdicts) at any concurrency."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import HttpModelConfig, SuiteConfig
from monitor.records import Run, RunStatus
from monitor.runs.runner import Runner
from monitor.scoring import base
from monitor.scoring.evaluation import Attempt, Evaluation
from monitor.store import Store
from monitor.verdicts.service import Configured, judge_run
from tests.scoring.stalling import Boom, Burn, Stall
from tests.servers import deadline, serve_in_thread

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"]
WORDS += ["while", "seven", "wizards", "quietly", "box"]

Answer = Callable[[int], str]


def model_app(answer: Answer, on_request: Callable[[int], None] = lambda x: None) -> Any:
    """A model that answers case ``x`` with ``answer(x)``, each after a delay of its own
    (0-10 ms), so concurrent cases finish in another order than they were asked."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        x = int(json.loads(body)["x"])
        on_request(x)
        await asyncio.sleep((x * 37 % 11) / 1000)  # the model's own latency, per case
        payload = json.dumps({"prediction": answer(x)}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'monitor.db'}")
    store.upgrade()
    yield store
    store.close()


def text(x: int, shift: int = 0) -> str:
    """A sentence of 4-12 words, different per case, with a line break in some."""
    words = [WORDS[(x * 5 + i * 3 + shift) % len(WORDS)] for i in range(4 + x % 9)]
    if x % 3 == 0:
        words.insert(len(words) // 2, "\n")
    return " ".join(words)


def write_suite(tmp_path: Path, rows: list[dict[str, Any]], metrics: list[Any]) -> SuiteConfig:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return SuiteConfig.model_validate(
        {
            "name": "s",
            "dataset": str(path),
            "task": "text",
            "metrics": metrics,
            "models": ["m"],
            "expected": "answer",
            "inputs": ["x"],
            "metadata": ["segment"],
            "slices": ["segment"],
            "seed": 7,
        }
    )


def http_model(url: str, concurrency: int) -> HttpModelConfig:
    return HttpModelConfig.model_validate(
        {
            "name": "m",
            "adapter": "http",
            "url": f"{url}/predict",
            "body": {"x": "{{x}}"},
            "concurrency": concurrency,
        }
    )


async def run_against(
    store: Store, suite: SuiteConfig, answer: Answer, concurrency: int, **server: Any
) -> Run:
    with serve_in_thread(model_app(answer, **server)) as url:
        runner = Runner(store, clock=lambda: NOW)
        try:
            return await runner.run(suite, http_model(url, concurrency))
        finally:
            await runner.aclose()


async def test_scoring_that_stalls_does_not_hold_the_requests(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first case's scoring waits for every case to have been asked. Scored on the
    # event loop, it would hold every request after it and wait for nothing (scoring 0
    # after its patience); scored off the loop, the model gets every request meanwhile.
    monkeypatch.setitem(base._REGISTRY, Stall.name, Stall)
    n, go = 24, tmp_path / "go"
    rows = [
        {"id": f"c{i:02d}", "x": i, "answer": "stall" if i == 0 else "ok", "segment": "a"}
        for i in range(n)
    ]
    suite = write_suite(tmp_path, rows, [{"name": "stall", "go": str(go)}, "contains"])
    asked: list[int] = []

    def on_request(x: int) -> None:
        asked.append(x)
        if len(asked) == n:
            go.touch()

    run = await run_against(store, suite, lambda x: "ok", 4, on_request=on_request)
    assert run.status is RunStatus.SUCCEEDED, run.error
    stall = suite.build_metrics()[0].label
    scores = {c.case_id: c.scores for c in store.runs.list_cases(run.id, limit=None)}
    assert scores["c00"][stall] == 1.0  # its scoring ended after the 24th request came
    assert sorted(asked) == list(range(n))
    assert {m.name: m.value for m in run.metrics}[stall] == 1.0


def fixed_latency_app(served: dict[int, float]) -> Any:
    """A model that answers case ``x`` 30, 50, 70 or 90 ms after its request reached the
    app (by ``x % 4``: concurrent answers come in one by one), and keeps per case how long
    it took from there until it began to answer."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        x = int(json.loads(body)["x"])
        await asyncio.sleep(0.03 + 0.02 * (x % 4))
        headers = [(b"content-type", b"application/json")]
        served[x] = time.perf_counter() - started
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"prediction": "ok"}'})

    return app


async def test_stored_latency_is_the_models_and_never_holds_scoring(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each case's scoring burns four times the tolerance in CPU. Counted in the latency,
    # or run where it holds the answers that come in meanwhile (on the event loop, while
    # the other cases' requests are out), it would make cases that much slower than the
    # model says it took; off the loop, each stored latency holds the model's own time and
    # little else.
    monkeypatch.setitem(base._REGISTRY, Burn.name, Burn)
    tolerance = deadline(0.05)
    n = 12
    rows = [{"id": f"c{i:02d}", "x": i, "answer": "ok", "segment": "a"} for i in range(n)]
    suite = write_suite(tmp_path, rows, [{"name": "burn", "seconds": 4 * tolerance}])
    served: dict[int, float] = {}
    with serve_in_thread(fixed_latency_app(served)) as url:
        runner = Runner(store, clock=lambda: NOW)
        try:
            run = await runner.run(suite, http_model(url, 4))
        finally:
            await runner.aclose()
    assert run.status is RunStatus.SUCCEEDED, run.error
    stored = {
        int(c.case_id[1:]): c.latency_seconds for c in store.runs.list_cases(run.id, limit=None)
    }
    assert sorted(stored) == sorted(served) == list(range(n))
    for x, latency in stored.items():
        # The model's time lies within the request's, from first byte sent to last in.
        assert latency is not None and served[x] <= latency < served[x] + tolerance, x
    assert run.operations is not None and run.operations.latency_p95 is not None
    assert run.operations.latency_p95 < max(served.values()) + tolerance


async def test_a_metric_that_raises_in_a_worker_process_fails_the_run(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(base._REGISTRY, Boom.name, Boom)
    rows = [
        {"id": f"c{i:02d}", "x": i, "answer": "boom" if i == 5 else "ok", "segment": "a"}
        for i in range(20)
    ]
    suite = write_suite(tmp_path, rows, ["boom", "contains"])
    run = await run_against(store, suite, lambda x: "ok", 4)
    assert run.status is RunStatus.FAILED
    assert run.error == "internal error: RuntimeError: a bug in the metric"
    # The cases scored before and after the bad one are kept; the bad batch is not.
    assert 0 < len(store.runs.list_cases(run.id, limit=None)) < 20


async def test_scoring_in_worker_processes_gives_the_in_process_numbers(
    store: Store, tmp_path: Path
) -> None:
    schema = {"type": "object", "required": ["a"]}
    metrics = ["rouge-l", "rouge-lsum", "rouge-2", "bleu", "chrf", "f1-score", "contains"]
    metrics += [{"name": "json-schema", "schema": schema}]
    rows = [
        {"id": f"c{i:02d}", "x": i, "answer": text(i), "segment": f"s{i % 3}"} for i in range(40)
    ]

    def answer(x: int) -> str:
        return json.dumps({"a": x}) if x % 7 == 0 else text(x, shift=x % 4)

    suite = write_suite(tmp_path, rows, metrics)
    run = await run_against(store, suite, answer, 8)
    assert run.status is RunStatus.SUCCEEDED, run.error
    cases = store.runs.list_cases(run.id, limit=None)
    here = Evaluation(suite.build_metrics(), slices=suite.slices, seed=suite.seed)
    for case in sorted(cases, key=lambda c: c.case_id):
        slices = {"segment": case.metadata["segment"]}
        scored = here.add(case.case_id, case.expected, [Attempt(case.prediction)], slices)
        assert scored.scores == case.scores, case.case_id
    expected = here.results()
    assert not expected.skipped and len(expected.metrics) == len(metrics)
    assert sorted(run.metrics, key=repr) == sorted(expected.metrics, key=repr)
    assert sorted(run.slices, key=repr) == sorted(expected.slices, key=repr)


def versioned(version: int) -> Answer:
    """A deterministic model: version 2 answers some cases better and some worse."""

    def answer(x: int) -> str:
        if x % 4 == 0:
            return text(x) if version == 1 else text(x, shift=1)
        if x % 4 == 1:
            return text(x, shift=2) if version == 1 else text(x)
        return text(x)

    return answer


async def test_the_same_answers_give_the_same_numbers_at_any_concurrency(
    store: Store, tmp_path: Path
) -> None:
    rows = [
        {"id": f"case-{i}", "x": i, "answer": text(i), "segment": ["en", "fr", "de"][i % 3]}
        for i in range(90)
    ]
    metrics = ["exact-match", "f1-score", "rouge-l", "bleu", "contains"]
    suite = write_suite(tmp_path, rows, metrics)
    baseline = await run_against(store, suite, versioned(1), 4)
    one = await run_against(store, suite, versioned(2), 1)
    many = await run_against(store, suite, versioned(2), 32)
    for run in (baseline, one, many):
        assert run.status is RunStatus.SUCCEEDED, run.error
    assert one.metrics == many.metrics
    assert one.slices == many.slices
    assert all(m.lower is not None for m in one.metrics)
    assert (one.n_cases, one.n_errors) == (many.n_cases, many.n_errors)
    config = Configured([suite], [http_model("http://127.0.0.1:1", 1)])
    first = judge_run(store, config, one, at=NOW, baseline=baseline.id)
    second = judge_run(store, config, many, at=NOW, baseline=baseline.id)
    assert (first.outcome, first.reason) == (second.outcome, second.reason)
    assert first.metrics == second.metrics and first.changes == second.changes
    assert any(m.p_value < 1.0 for m in first.metrics)
