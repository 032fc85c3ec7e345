"""Store contract for stream window performance, on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from monitor.records import WindowPerformance
from monitor.store import Store
from tests.store.conftest import T0
from tests.store.test_store_drift import report


def row(key: str = "w1", **changes: object) -> WindowPerformance:
    base = WindowPerformance(
        stream="s",
        window_key=key,
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        report_id=None,
        state="provisional",
        status="ok",
        n_rows=500,
        n_labelled=400,
        metrics=({"metric": "accuracy", "value": 0.9, "lower": 0.87, "upper": 0.92},),
        comparison=(),
        worse=False,
        baseline=None,
        due_at=T0 + timedelta(hours=2),
        labels_until=None,
        labels_digest="d1",
        reopened=0,
        reopened_at=None,
        created_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(hours=1),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_window_performance_is_stored_once_and_replaced_in_place(store: Store) -> None:
    report_id = store.streams.add_drift_report(report())
    first = store.streams.save_performance(row(report_id=report_id))
    judged = {"metric": "accuracy", "reference": 0.95, "current": 0.8, "delta": -0.15}
    judged |= {"test": "fisher-exact", "p_value": 0.01, "worse": True}
    later = T0 + timedelta(hours=3)
    second = store.streams.save_performance(
        row(
            report_id=report_id,
            state="final",
            n_labelled=500,
            comparison=(judged,),
            worse=True,
            baseline="reference",
            reopened=1,
            reopened_at=later,
            labels_until=later,
            updated_at=later,
        )
    )
    assert first.id == second.id
    stored = store.streams.performance_for("s", ["w1", "absent"])
    assert list(stored) == ["w1"]
    got = stored["w1"]
    assert (got.state, got.n_labelled, got.worse, got.reopened) == ("final", 500, True, 1)
    assert got.comparison == (judged,) and got.reopened_at == later
    assert got.created_at == T0 + timedelta(hours=1)  # the first scoring's time stays


def test_open_windows_and_the_latest_scored_window_per_stream(store: Store) -> None:
    for i in range(4):
        at = T0 + timedelta(hours=i)
        store.streams.save_performance(row(f"w{i}", created_at=at, updated_at=at))
    store.streams.save_performance(row("w9", status="insufficient_labels", metrics=()))
    store.streams.save_performance(row("x1", stream="other"))
    recent = store.streams.open_performance("s", since=T0 + timedelta(hours=1), limit=2)
    assert [r.window_key for r in recent] == ["w3", "w9"]
    latest = {r.stream: r.window_key for r in store.streams.latest_performance()}
    assert latest == {"s": "w3", "other": "x1"}  # the newest with metrics


def test_the_newest_label_time_of_a_stream(store: Store) -> None:
    assert store.streams.latest_label_at("s") is None
    store.streams.upsert_labels("s", [("a", "1"), ("b", "0")], at=T0)
    store.streams.upsert_labels("s", [("a", "0")], at=T0 + timedelta(minutes=5))
    store.streams.upsert_labels("t", [("a", "0")], at=T0 + timedelta(hours=5))
    assert store.streams.latest_label_at("s") == T0 + timedelta(minutes=5)
