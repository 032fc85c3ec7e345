"""Cases, tokens and cost on /metrics: totals over finished runs, the latest run's values,
and no series at all where nothing is known."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.metrics.collector import StoreCollector
from monitor.records import CaseResult, RunOperations, RunStatus
from monitor.store import Store

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
OK = CaseResult("ok", {}, "a", prediction="a")
FAILED = CaseResult("failed", {}, "a", error_kind="timeout", error="slow")

Key = tuple[str, tuple[tuple[str, str], ...]]


def finish(
    store: Store,
    model: str,
    minute: int,
    status: RunStatus,
    *,
    tokens: tuple[int, int] | None = None,
    cost: float | None = None,
    currency: str | None = None,
    cases: tuple[CaseResult, ...] = (OK, FAILED),
) -> None:
    at = T0 + timedelta(minutes=minute)
    run_id = store.runs.create_run(
        suite="s", model=model, trigger="schedule", dataset_sha256="d", config_hash="c", at=at
    )
    prompt, completion = tokens or (None, None)
    operations = RunOperations(
        None, None, None, None, None, None, prompt, completion, cost, currency
    )
    store.runs.finish_run(
        run_id, status=status, at=at + timedelta(seconds=1), cases=cases, operations=operations
    )


def scrape(store: Store) -> dict[Key, float]:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, version=__version__))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def pair(model: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"suite": "s", "model": model, **more}.items()))


def test_tokens_cost_and_cases_add_up_over_finished_runs(store: Store) -> None:
    finish(store, "llm", 0, RunStatus.SUCCEEDED, tokens=(100, 10), cost=0.25, currency="USD")
    finish(store, "llm", 1, RunStatus.FAILED, tokens=(50, 5), cost=0.125, currency="USD")
    finish(store, "llm", 2, RunStatus.SUCCEEDED, currency="USD")  # no usage report
    finish(store, "llm", 3, RunStatus.SUCCEEDED, tokens=(7, 3), cost=0.5, currency="USD")
    finish(store, "clf", 0, RunStatus.SUCCEEDED, cases=(OK,))  # no usage, no price
    store.runs.create_run(
        suite="s", model="new", trigger="schedule", dataset_sha256="d", config_hash="c", at=T0
    )  # running: nothing finished to count yet

    samples = scrape(store)

    assert samples[("monitor_cases_total", pair("llm"))] == 8
    assert samples[("monitor_case_errors_total", pair("llm"))] == 4
    assert samples[("monitor_tokens_total", pair("llm", kind="prompt", role="model"))] == 157
    assert samples[("monitor_tokens_total", pair("llm", kind="completion", role="model"))] == 18
    assert samples[("monitor_cost_total", pair("llm", currency="USD", role="model"))] == 0.875
    assert samples[("monitor_last_run_cost", pair("llm", currency="USD"))] == 0.5
    assert samples[("monitor_last_run_cases", pair("llm"))] == 2
    assert samples[("monitor_last_run_case_errors", pair("llm"))] == 1
    assert samples[("monitor_cases_total", pair("clf"))] == 1
    assert samples[("monitor_case_errors_total", pair("clf"))] == 0
    # Unknown is absent, never 0: no tokens or cost for clf, nothing but run counts for "new".
    clf = [name for name, labels in samples if dict(labels).get("model") == "clf"]
    assert not [n for n in clf if "token" in n or "cost" in n], clf
    new = {name for name, labels in samples if dict(labels).get("model") == "new"}
    assert new == {"monitor_runs_finished_total", "monitor_runs"}


def test_the_latest_run_without_a_known_cost_exports_no_cost(store: Store) -> None:
    finish(store, "llm", 0, RunStatus.SUCCEEDED, tokens=(1, 1), cost=0.5, currency="EUR")
    finish(store, "llm", 1, RunStatus.INTERRUPTED)

    samples = scrape(store)

    assert samples[("monitor_cost_total", pair("llm", currency="EUR", role="model"))] == 0.5
    assert not [key for key in samples if key[0] == "monitor_last_run_cost"]
    assert samples[("monitor_last_run_cases", pair("llm"))] == 2


def test_judge_tokens_and_cost_are_exported_apart_with_role_judge(store: Store) -> None:
    from monitor.records import JudgeUsage

    def judged(minute: int, status: RunStatus, cost: float | None) -> None:
        at = T0 + timedelta(minutes=minute)
        run_id = store.runs.create_run(
            suite="s", model="llm", trigger="schedule", dataset_sha256="d", config_hash="c", at=at
        )
        operations = RunOperations(None, None, None, None, None, None, 100, 10, 0.25, "USD")
        usage = JudgeUsage("rubric", "j", "0" * 64, 2, 0, 40, 4, cost, "USD" if cost else None)
        store.runs.finish_run(
            run_id,
            status=status,
            at=at + timedelta(seconds=1),
            cases=(OK,),
            operations=operations,
            judges=[usage, replace(usage, metric="faithfulness", prompt_tokens=None, cost=None)],
        )

    judged(0, RunStatus.SUCCEEDED, 0.01)
    judged(1, RunStatus.FAILED, 0.02)

    samples = scrape(store)

    assert samples[("monitor_tokens_total", pair("llm", kind="prompt", role="model"))] == 200
    assert samples[("monitor_tokens_total", pair("llm", kind="prompt", role="judge"))] == 80
    assert samples[("monitor_tokens_total", pair("llm", kind="completion", role="judge"))] == 16
    assert samples[("monitor_cost_total", pair("llm", currency="USD", role="model"))] == 0.5
    judge_cost = samples[("monitor_cost_total", pair("llm", currency="USD", role="judge"))]
    assert judge_cost == pytest.approx(0.03)
