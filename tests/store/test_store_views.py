"""The per suite x model views the metrics exporter reads, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.records import LatestScore, RunOperations, RunStatus, RunSummary
from monitor.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

AddRun = Callable[..., int]


def test_latest_scores_use_the_latest_succeeded_run_per_pair(
    store: Store, add_run: AddRun, start_run: Callable[..., int]
) -> None:
    add_run("qa", "prod", metrics={"em": 0.5})
    good = add_run("qa", "prod", metrics={"em": 0.75, "f1": 0.8}, at=T0 + timedelta(hours=1))
    add_run("qa", "prod", status=RunStatus.FAILED, metrics={"em": 0.1})
    add_run("qa", "prod", status=RunStatus.INTERRUPTED, metrics={"em": 0.2})
    start_run("qa", "prod")
    cand = add_run("qa", "candidate", metrics={"em": 0.9})
    add_run("summarise", "prod", status=RunStatus.FAILED, metrics={"rouge": 0.3})

    scores = store.runs.latest_scores()

    finished = T0 + timedelta(hours=1, seconds=10)
    assert [(s.suite, s.model, s.metric, s.value, s.run_id) for s in scores] == [
        ("qa", "candidate", "em", 0.9, cand),
        ("qa", "prod", "em", 0.75, good),
        ("qa", "prod", "f1", 0.8, good),
    ]
    assert scores[1] == LatestScore("qa", "prod", "em", 0.75, 0.5, 1.0, good, finished)
    assert scores[1].finished_at.tzinfo is UTC


def test_latest_scores_of_an_empty_store(store: Store) -> None:
    assert store.runs.latest_scores() == []
    assert store.runs.run_summaries() == []


def test_run_summaries_count_and_time_runs_per_pair(
    store: Store, add_run: AddRun, start_run: Callable[..., int]
) -> None:
    add_run("qa", "prod", at=T0, seconds=10)
    add_run("qa", "prod", status=RunStatus.FAILED, at=T0 + timedelta(minutes=1), seconds=30)
    add_run("qa", "prod", status=RunStatus.SUCCEEDED, at=T0 - timedelta(hours=1), seconds=5)
    start_run("qa", "prod")
    start_run("qa", "candidate")
    add_run("summarise", "prod", status=RunStatus.INTERRUPTED, at=T0, seconds=2)

    summaries = store.runs.run_summaries()

    assert summaries == [
        RunSummary("qa", "candidate", {"running": 1}, None, None, None, updated_at=T0),
        RunSummary(
            "qa",
            "prod",
            {"succeeded": 2, "failed": 1, "running": 1},
            last_finished_at=T0 + timedelta(minutes=1, seconds=30),
            last_success_at=T0 + timedelta(seconds=10),
            last_duration_seconds=30.0,
            last_cases=0,
            last_case_errors=0,
            updated_at=T0 + timedelta(minutes=1, seconds=30),  # its latest write
        ),
        RunSummary(
            "summarise",
            "prod",
            {"interrupted": 1},
            last_finished_at=T0 + timedelta(seconds=2),
            last_success_at=None,
            last_duration_seconds=2.0,
            last_cases=0,
            last_case_errors=0,
            updated_at=T0 + timedelta(seconds=2),
        ),
    ]
    assert all(
        moment is None or moment.tzinfo is UTC
        for summary in summaries
        for moment in (summary.last_finished_at, summary.last_success_at)
    )


def operations(
    prompt: int | None, completion: int | None, cost: float | None, currency: str | None
) -> RunOperations:
    return RunOperations(None, None, None, None, None, None, prompt, completion, cost, currency)


def test_run_summaries_add_up_cases_tokens_and_cost_of_finished_runs(
    store: Store, start_run: Callable[..., int], make_cases: Callable[..., Any]
) -> None:
    finished = [
        # status, cases, errors, operations
        (RunStatus.SUCCEEDED, 4, 0, operations(100, 20, 0.5, "USD")),
        (RunStatus.FAILED, 5, 3, operations(2**40, 7, 0.25, "USD")),  # BIGINT sums
        (RunStatus.SUCCEEDED, 3, 1, operations(None, None, None, "USD")),  # no usage report
        (RunStatus.SUCCEEDED, 2, 0, operations(10, 1, None, None)),  # no price
        (RunStatus.SUCCEEDED, 1, 0, operations(1, 1, 2.0, "EUR")),  # price changed
        (RunStatus.INTERRUPTED, 2, 2, None),
    ]
    for i, (status, count, errors, ops) in enumerate(finished):
        run_id = start_run("qa", "prod", at=T0 + timedelta(minutes=i))
        store.runs.finish_run(
            run_id,
            status=status,
            at=T0 + timedelta(minutes=i, seconds=1),
            cases=make_cases(count, errors=errors),
            operations=ops,
        )
    running = start_run("qa", "prod", at=T0 + timedelta(hours=1))
    store.runs.append_cases(running, make_cases(9))  # not finished: not counted yet
    priced = start_run("qa", "cand")
    cand_ops = operations(3, 4, 0.125, "USD")
    store.runs.finish_run(
        priced, status=RunStatus.SUCCEEDED, at=T0, cases=make_cases(2), operations=cand_ops
    )
    unknown = start_run("qa", "other")
    no_usage = operations(None, None, None, None)
    store.runs.finish_run(
        unknown, status=RunStatus.SUCCEEDED, at=T0, cases=make_cases(1), operations=no_usage
    )

    cand, other, prod = store.runs.run_summaries()

    assert (prod.cases, prod.case_errors) == (17, 6)
    assert (prod.prompt_tokens, prod.completion_tokens) == (100 + 2**40 + 10 + 1, 20 + 7 + 1 + 1)
    assert prod.cost == {"USD": 0.75, "EUR": 2.0}
    assert isinstance(prod.prompt_tokens, int) and isinstance(prod.cases, int)
    # The latest finished run was interrupted: its cases are known, its cost is not.
    assert (prod.last_cases, prod.last_case_errors) == (2, 2)
    assert (prod.last_cost, prod.last_currency) == (None, None)
    assert (cand.prompt_tokens, cand.completion_tokens, cand.cost) == (3, 4, {"USD": 0.125})
    assert (cand.last_cases, cand.last_cost, cand.last_currency) == (2, 0.125, "USD")
    assert (other.cases, other.prompt_tokens, other.completion_tokens) == (1, None, None)
    assert other.cost == {} and other.last_cost is None


def test_of_runs_that_finished_together_the_later_one_is_the_latest(
    store: Store, start_run: Callable[..., int], make_cases: Callable[..., Any]
) -> None:
    end = T0 + timedelta(minutes=5)
    for started, count in ((T0, 3), (T0 + timedelta(minutes=1), 2)):
        run_id = start_run("qa", "prod", at=started)
        store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=end, cases=make_cases(count))

    (summary,) = store.runs.run_summaries()

    assert (summary.last_cases, summary.last_duration_seconds) == (2, 240.0)
