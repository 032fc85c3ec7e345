"""A suite run's group fairness measures: stored with the run, all or nothing, read back
with it, and the latest succeeded run's found per suite x model, on every backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.records import FairnessValue, MetricValue, RunStatus
from monitor.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)

StartRun = Callable[..., int]

MEASURES = (
    FairnessValue("gender", "equalized_odds_difference", 0.25, 0.1, 0.4, 40),
    FairnessValue("gender", "demographic_parity_difference", 0.125, None, None, 40),
)


def test_fairness_is_stored_and_read_with_the_run(store: Store, start_run: StartRun) -> None:
    run_id = start_run()
    metrics = [MetricValue("accuracy", 0.8, 0.7, 0.9, 40)]
    store.runs.finish_run(
        run_id, status=RunStatus.SUCCEEDED, at=T1, metrics=metrics, fairness=MEASURES
    )
    run = store.runs.get_run(run_id)
    assert run is not None
    assert run.fairness == tuple(sorted(MEASURES, key=lambda f: f.measure))
    assert store.runs.latest_fairness() == [("qa", "prod", f) for f in run.fairness]


def test_a_non_finite_measure_is_refused_and_nothing_is_stored(
    store: Store, start_run: StartRun
) -> None:
    run_id = start_run()
    bad = FairnessValue("gender", "demographic_parity_ratio", math.nan, None, None, 3)
    with pytest.raises(ValueError, match=r"fairness\[1\] 'demographic_parity_ratio'"):
        store.runs.finish_run(
            run_id, status=RunStatus.SUCCEEDED, at=T1, fairness=(MEASURES[0], bad)
        )
    run = store.runs.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING and run.fairness == ()


def test_latest_fairness_is_the_newest_succeeded_runs(store: Store, start_run: StartRun) -> None:
    first = start_run()
    store.runs.finish_run(first, status=RunStatus.SUCCEEDED, at=T1, fairness=MEASURES[:1])
    second = start_run(at=T1)
    newer = FairnessValue("gender", "equalized_odds_difference", 0.5, 0.3, 0.7, 40)
    store.runs.finish_run(second, status=RunStatus.SUCCEEDED, at=T1, fairness=(newer,))
    failed = start_run(at=T1)
    store.runs.finish_run(failed, status=RunStatus.FAILED, at=T1, error="endpoint down")
    other = start_run("other", at=T1)
    store.runs.finish_run(other, status=RunStatus.SUCCEEDED, at=T1)
    assert store.runs.latest_fairness() == [("qa", "prod", newer)]
