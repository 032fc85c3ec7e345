"""A suite run's slice gaps with their intervals: stored with the run, all or nothing,
read back with it on every backend; a run stored without them (before revision 0026)
has its point gaps recomputed from its slices, without intervals."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.records import RunStatus, SliceGap, SliceMetric
from monitor.scoring.evaluation import run_gaps
from monitor.store import Store
from monitor.wire.runs import RunOut

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=3)

StartRun = Callable[..., int]

SLICES = (
    SliceMetric("region", "north", "accuracy", 0.9, 0.8, 0.95, 50),
    SliceMetric("region", "south", "accuracy", 0.6, 0.5, 0.7, 50),
)
GAP = SliceGap("region", "accuracy", 0.9 - 0.6, "north", "south", 0.15, 0.45)


def test_gaps_are_stored_and_read_with_the_run(store: Store, start_run: StartRun) -> None:
    run_id = start_run()
    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, slices=SLICES, gaps=(GAP,))
    run = store.runs.get_run(run_id)
    assert run is not None and run.gaps == (GAP,)
    assert run_gaps(run) == [GAP]
    (shown,) = RunOut.of(run).model_dump(mode="json")["slice_gaps"]
    assert (shown["lower"], shown["upper"]) == (0.15, 0.45)


def test_a_run_without_stored_gaps_recomputes_them_without_intervals(
    store: Store, start_run: StartRun
) -> None:
    run_id = start_run()
    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T1, slices=SLICES)
    run = store.runs.get_run(run_id)
    assert run is not None and run.gaps == ()
    (gap,) = run_gaps(run)
    assert (gap.best, gap.worst, gap.lower, gap.upper) == ("north", "south", None, None)
    assert gap.gap == pytest.approx(GAP.gap)


def test_a_non_finite_gap_bound_is_refused_and_nothing_is_stored(
    store: Store, start_run: StartRun
) -> None:
    run_id = start_run()
    bad = SliceGap("region", "f1", 0.2, "north", "south", math.inf, None)
    with pytest.raises(ValueError, match=r"gaps\[1\] 'f1': lower must be finite"):
        store.runs.finish_run(
            run_id, status=RunStatus.SUCCEEDED, at=T1, slices=SLICES, gaps=(GAP, bad)
        )
    run = store.runs.get_run(run_id)
    assert run is not None and run.status is RunStatus.RUNNING and run.gaps == ()
