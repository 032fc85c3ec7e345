"""PerformanceTracker on a real store with a fixed clock: provisional until the label
delay, then final; late labels re-open a final window; rows that retention dropped
leave the scored figures alone; a refresh that changes nothing announces nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from monitor.records import NewDriftReport
from monitor.store import Store
from monitor.streams.performance import PerformanceTracker
from monitor.streams.windows import Window
from tests.streams.conftest import MakeConfig, stream_table

T0 = datetime(2026, 12, 2, 12, tzinfo=UTC)
WINDOW = Window(key="rows:0-60", first_row=0, end_row=60)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def window_rows(labels: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "ts": [T0] * len(labels),
            "alcohol": [1.0] * len(labels),
            "pred": ["1"] * len(labels),
            "y": labels,
        }
    )


def test_provisional_then_final_then_reopened_by_a_late_label(
    make_stream_config: MakeConfig, store: Store, tmp_path: Path
) -> None:
    (tmp_path / "reference.csv").write_text("ts,alcohol,pred,y\n")
    table = stream_table(
        numerical=["alcohol"],
        categorical=[],
        prediction="pred",
        prediction_kind="categorical",
        label="y",
        window={"rows": 60, "min_rows": 10},
        performance={"label_delay": "10m", "min_labels": 10, "metrics": ["accuracy"]},
    )
    stream = make_stream_config(table).streams[0]
    clock = Clock()
    current = {"table": window_rows(["1"] * 40 + [None] * 20)}
    tracker = PerformanceTracker(
        stream,
        store,
        read=lambda window: current["table"],
        reference=lambda: pa.table({"ts": [], "alcohol": []}),  # no labels: not judged
        clock=clock,
    )
    report_id = store.streams.add_drift_report(
        NewDriftReport(stream.name, WINDOW.key, None, None, T0, "ok", 60, 0.0, False, ())
    )
    assert report_id is not None
    first = tracker.record(WINDOW, report_id, current["table"], tracker.labels_mark())
    assert (first.state, first.n_labelled, first.baseline) == ("provisional", 40, None)
    assert first.metrics[0]["value"] == 1.0 and tracker.take() == [first]

    # The last 20 labels arrive (all wrong): re-scored, still provisional.
    clock.now = T0 + timedelta(minutes=5)
    store.streams.upsert_labels(stream.name, [(f"r{i}", "0") for i in range(20)], at=clock.now)
    current["table"] = window_rows(["1"] * 40 + ["0"] * 20)
    (rescored,) = tracker.refresh()
    assert (rescored.state, rescored.n_labelled, rescored.reopened) == ("provisional", 60, 0)
    assert rescored.metrics[0]["value"] == 40 / 60
    assert tracker.refresh() == []  # nothing new: nothing to say

    # The label delay passes: final, with the same figures.
    clock.now = T0 + timedelta(minutes=11)
    (final,) = tracker.refresh()
    assert final.state == "final" and final.metrics == rescored.metrics

    # A label for another stream's record, or one that changes nothing here, is silent.
    clock.now = T0 + timedelta(minutes=12)
    store.streams.upsert_labels(stream.name, [("elsewhere", "1")], at=clock.now)
    assert tracker.refresh() == []

    # A late label that changes this window re-opens it; one delay later it is final.
    clock.now = T0 + timedelta(minutes=13)
    store.streams.upsert_labels(stream.name, [("r0", "1")], at=clock.now)
    current["table"] = window_rows(["1"] * 41 + ["0"] * 19)
    (reopened,) = tracker.refresh()
    assert (reopened.state, reopened.reopened, reopened.reopened_at) == ("reopened", 1, clock.now)
    assert reopened.metrics[0]["value"] == 41 / 60
    clock.now = T0 + timedelta(minutes=24)
    (again,) = tracker.refresh()
    assert (again.state, again.reopened) == ("final", 1)
    stored = store.streams.performance_for(stream.name, [WINDOW.key])[WINDOW.key]
    assert (stored.state, stored.n_labelled, stored.reopened) == ("final", 60, 1)

    # Retention dropped the window's rows: a new label does not wipe what was scored.
    clock.now = T0 + timedelta(minutes=30)
    store.streams.upsert_labels(stream.name, [("r1", "0")], at=clock.now)
    current["table"] = window_rows([])
    assert tracker.refresh() == []
    kept = store.streams.performance_for(stream.name, [WINDOW.key])[WINDOW.key]
    assert (kept.n_labelled, kept.metrics) == (60, stored.metrics)
