"""Store contract for streams and drift: batches, profiles, reports, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.records import NewDriftReport
from monitor.store import Store
from tests.store.conftest import T0

COLUMNS = (
    {
        "column": "x",
        "kind": "numerical",
        "drifted": True,
        "results": [
            {
                "method": "ks",
                "statistic": 0.25,
                "p_value": 0.001,
                "threshold": 0.05,
                "drifted": True,
                "kind": "p_value",
            }
        ],
        "quality": {"missing_share": 0.0, "out_of_range_share": 0.5, "new_categories": []},
    },
)


def report(stream: str = "s", key: str = "w1", **changes: object) -> NewDriftReport:
    fields: dict[str, object] = {
        "stream": stream,
        "window_key": key,
        "window_start": T0,
        "window_end": T0 + timedelta(hours=1),
        "created_at": T0 + timedelta(hours=1),
        "status": "ok",
        "n_rows": 500,
        "drift_share": 1.0,
        "dataset_drifted": True,
        "columns": COLUMNS,
    }
    fields.update(changes)
    return NewDriftReport(**fields)  # type: ignore[arg-type]


def append(store: Store, stream: str, start_minute: int, n_rows: int, payload: bytes = b"x"):
    first = T0 + timedelta(minutes=start_minute)
    return store.streams.append_batch(
        stream,
        received_at=first,
        first_ts=first,
        last_ts=first + timedelta(minutes=9),
        n_rows=n_rows,
        payload=payload,
    )


def test_batches_are_numbered_consecutively_per_stream(store: Store) -> None:
    assert append(store, "a", 0, 10)[1] == 0
    assert append(store, "a", 10, 5)[1] == 10
    assert append(store, "b", 0, 7)[1] == 0
    assert append(store, "a", 20, 1)[1] == 15
    counts = {c.stream: (c.n_rows, c.n_batches) for c in store.streams.stream_counts()}
    assert counts == {"a": (16, 3), "b": (7, 1)}


def test_batches_between_selects_overlapping_batches(store: Store) -> None:
    append(store, "a", 0, 10, b"first")
    append(store, "a", 10, 10, b"second")
    append(store, "a", 20, 10, b"third")
    window = store.streams.batches_between(
        "a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=20)
    )
    assert [b.payload for b in window] == [b"first", b"second"]
    assert window[0].first_ts == T0 and window[0].first_ts.tzinfo is not None
    assert store.streams.batches_between("b", T0, T0 + timedelta(days=1)) == []


def test_batches_for_rows_selects_overlapping_batches(store: Store) -> None:
    for start in (0, 10, 20):
        append(store, "a", start, 10, str(start).encode())
    assert [b.payload for b in store.streams.batches_for_rows("a", 5, 15)] == [b"0", b"10"]
    assert [b.payload for b in store.streams.batches_for_rows("a", 20, 30)] == [b"20"]
    assert store.streams.batches_for_rows("a", 30, 40) == []


def test_retention_drops_only_old_batches(store: Store) -> None:
    append(store, "a", 0, 10)
    append(store, "a", 30, 10)
    assert store.streams.delete_batches_before("a", T0 + timedelta(minutes=20)) == 1
    assert [b.first_row for b in store.streams.batches_for_rows("a", 0, 100)] == [10]


def test_invalid_batch_is_refused_before_sql(store: Store) -> None:
    with pytest.raises(ValueError, match="n_rows must be positive"):
        store.streams.append_batch(
            "a", received_at=T0, first_ts=T0, last_ts=T0, n_rows=0, payload=b""
        )
    with pytest.raises(ValueError, match="before first_ts"):
        store.streams.append_batch(
            "a", received_at=T0, first_ts=T0, last_ts=T0 - timedelta(1), n_rows=1, payload=b""
        )


def test_profile_is_stored_once_per_reference(store: Store) -> None:
    first = store.streams.save_profile(
        "a", reference_hash="h1", at=T0, n_rows=10, profile=b"\x00p1"
    )
    again = store.streams.save_profile("a", reference_hash="h1", at=T0, n_rows=10, profile=b"other")
    other = store.streams.save_profile("a", reference_hash="h2", at=T0, n_rows=20, profile=b"p2")
    assert first == again != other
    stored = store.streams.get_profile("a", "h1")
    assert stored is not None and stored.profile == b"\x00p1" and stored.n_rows == 10
    assert store.streams.get_profile("a", "h3") is None


def test_drift_report_round_trip(store: Store) -> None:
    profile_id = store.streams.save_profile("s", reference_hash="h", at=T0, n_rows=1, profile=b"p")
    report_id = store.streams.add_drift_report(report(profile_id=profile_id, html="<html>r</html>"))
    assert report_id is not None
    stored = store.streams.get_drift_report(report_id)
    assert stored is not None
    assert stored.columns == COLUMNS
    assert (stored.stream, stored.window_key, stored.status) == ("s", "w1", "ok")
    assert stored.window_start == T0 and stored.profile_id == profile_id
    assert stored.dataset_drifted is True and stored.has_html is True
    assert store.streams.get_drift_html(report_id) == "<html>r</html>"
    assert store.streams.get_drift_report(report_id + 100) is None


def test_one_report_per_window(store: Store) -> None:
    assert store.streams.add_drift_report(report()) is not None
    assert store.streams.add_drift_report(report()) is None
    assert len(store.streams.list_drift_reports("s")) == 1


def test_list_and_latest_reports(store: Store) -> None:
    ids = [store.streams.add_drift_report(report(key=f"w{i}")) for i in range(5)]
    store.streams.add_drift_report(report(key="w9", status="insufficient_data", drift_share=None))
    store.streams.add_drift_report(report(stream="t", key="w1", dataset_drifted=False))
    page = store.streams.list_drift_reports("s", limit=2)
    assert [r.window_key for r in page] == ["w9", "w4"]
    older = store.streams.list_drift_reports("s", limit=10, before_id=page[-1].id)
    assert [r.id for r in older] == list(reversed(ids[:4]))
    assert older[0].has_html is False
    latest = {r.stream: r.window_key for r in store.streams.latest_drift_reports()}
    assert latest == {"s": "w4", "t": "w1"}


def test_non_finite_drift_share_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="drift_share must be finite"):
        store.streams.add_drift_report(report(drift_share=float("nan")))


def test_concurrent_appends_get_disjoint_row_numbers(store: Store) -> None:
    import threading

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                append(store, "a", 0, 3)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    firsts = sorted(b.first_row for b in store.streams.batches_for_rows("a", 0, 1000))
    assert firsts == list(range(0, 120, 3))


def test_labels_upsert_and_lookup(store: Store) -> None:
    store.streams.upsert_labels("a", [("r1", "good"), ("r2", None)], at=T0)
    store.streams.upsert_labels("a", [("r1", "bad")], at=T0 + timedelta(minutes=1))
    store.streams.upsert_labels("b", [("r1", "other")], at=T0)
    assert store.streams.labels_for("a", ["r1", "r2", "r3"]) == {"r1": "bad", "r2": None}
    assert store.streams.labels_for("a", [f"x{i}" for i in range(2500)]) == {}
    with pytest.raises(ValueError, match="twice"):
        store.streams.upsert_labels("a", [("r1", "x"), ("r1", "y")], at=T0)


def test_stream_extent_is_its_first_and_last_batch(store: Store) -> None:
    assert store.streams.stream_extent("a") is None
    for start in (0, 10, 20):
        append(store, "a", start, 10)
    extent = store.streams.stream_extent("a")
    assert extent is not None and (extent.first_row, extent.end_row) == (0, 30)
    assert extent.first_ts == T0
    store.streams.delete_batches_before("a", T0 + timedelta(minutes=5))
    extent = store.streams.stream_extent("a")
    assert extent is not None and (extent.first_row, extent.end_row) == (10, 30)
    assert extent.first_ts == T0 + timedelta(minutes=10)


def test_batches_for_rows_deep_in_a_long_stream(store: Store) -> None:
    for start in range(0, 300, 10):  # 30 batches of 10 rows
        append(store, "a", start, 10, str(start).encode())
    assert [b.payload for b in store.streams.batches_for_rows("a", 205, 225)] == [
        b"200",
        b"210",
        b"220",
    ]
    assert [b.payload for b in store.streams.batches_for_rows("a", 290, 400)] == [b"290"]
    assert [b.payload for b in store.streams.batches_for_rows("a", 0, 1)] == [b"0"]


def test_last_window_key_is_the_newest_of_its_kind(store: Store) -> None:
    assert store.streams.last_window_key("s", "rows") is None
    for key in ("rows:0-100", "rows:100-200", "time:a/b", "w_x", "rows_like:1-2"):
        store.streams.add_drift_report(report(key=key))
    store.streams.add_drift_report(report(stream="t", key="rows:900-1000"))
    assert store.streams.last_window_key("s", "rows") == "rows:100-200"
    assert store.streams.last_window_key("s", "time") == "time:a/b"
    assert store.streams.last_window_key("t", "time") is None


def test_a_report_keeps_its_shadow_comparison(store: Store) -> None:
    shadow = {
        "kind": "numerical",
        "status": "ok",
        "n_rows": 500,
        "n_pairs": 480,
        "confidence": 0.95,
        "agreement": 0.75,
        "mean_abs_difference": 0.4,
        "divergence": {"measure": "mean_difference", "value": 0.1, "lower": 0.05}
        | {"upper": 0.15, "p_value": 0.0002, "interval": "paired-t"},
    }
    with_shadow = store.streams.add_drift_report(report(key="w1", shadow=shadow))
    without = store.streams.add_drift_report(report(key="w2"))
    assert with_shadow is not None and without is not None
    got = store.streams.get_drift_report(with_shadow)
    assert got is not None and got.shadow == shadow
    plain = store.streams.get_drift_report(without)
    assert plain is not None and plain.shadow is None
    (latest,) = store.streams.latest_drift_reports()
    assert latest.id == without and latest.shadow is None
    listed = {r.window_key: r.shadow for r in store.streams.list_drift_reports("s")}
    assert listed == {"w1": shadow, "w2": None}
