"""The per suite x model views the metrics exporter reads, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from monitor.records import LatestScore, RunStatus, RunSummary
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

    scores = store.latest_scores()

    finished = T0 + timedelta(hours=1, seconds=10)
    assert [(s.suite, s.model, s.metric, s.value, s.run_id) for s in scores] == [
        ("qa", "candidate", "em", 0.9, cand),
        ("qa", "prod", "em", 0.75, good),
        ("qa", "prod", "f1", 0.8, good),
    ]
    assert scores[1] == LatestScore("qa", "prod", "em", 0.75, 0.5, 1.0, good, finished)
    assert scores[1].finished_at.tzinfo is UTC


def test_latest_scores_of_an_empty_store(store: Store) -> None:
    assert store.latest_scores() == []
    assert store.run_summaries() == []


def test_run_summaries_count_and_time_runs_per_pair(
    store: Store, add_run: AddRun, start_run: Callable[..., int]
) -> None:
    add_run("qa", "prod", at=T0, seconds=10)
    add_run("qa", "prod", status=RunStatus.FAILED, at=T0 + timedelta(minutes=1), seconds=30)
    add_run("qa", "prod", status=RunStatus.SUCCEEDED, at=T0 - timedelta(hours=1), seconds=5)
    start_run("qa", "prod")
    start_run("qa", "candidate")
    add_run("summarise", "prod", status=RunStatus.INTERRUPTED, at=T0, seconds=2)

    summaries = store.run_summaries()

    assert summaries == [
        RunSummary("qa", "candidate", {"running": 1}, None, None, None),
        RunSummary(
            "qa",
            "prod",
            {"succeeded": 2, "failed": 1, "running": 1},
            last_finished_at=T0 + timedelta(minutes=1, seconds=30),
            last_success_at=T0 + timedelta(seconds=10),
            last_duration_seconds=30.0,
        ),
        RunSummary(
            "summarise",
            "prod",
            {"interrupted": 1},
            last_finished_at=T0 + timedelta(seconds=2),
            last_success_at=None,
            last_duration_seconds=2.0,
        ),
    ]
    assert all(
        moment is None or moment.tzinfo is UTC
        for summary in summaries
        for moment in (summary.last_finished_at, summary.last_success_at)
    )
