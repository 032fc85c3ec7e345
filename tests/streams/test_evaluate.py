"""Judging windows: profile stored once, ingested windows compared, reports stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from monitor.config import StreamConfig
from monitor.store import Store
from monitor.streams.batch import encode, parse_batch
from monitor.streams.evaluate import StreamEvaluator
from tests.streams.conftest import MakeConfig, stream_table

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
REGIONS = np.array(["north", "south", "east"], dtype=object)


def frame(n: int, *, shift: float = 0.0, seed: int = 0, start: datetime = T0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "ts": [start + timedelta(seconds=i * 3600 / n) for i in range(n)],
        "alcohol": rng.normal(10 + shift, 1, n),
        "acidity": rng.lognormal(0, 0.5, n),
        "region": rng.choice(REGIONS, n, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5]),
    }


def write_reference(path: Path, n: int = 5000) -> None:
    pa_csv.write_csv(pa.table(frame(n, seed=1)), path)


def ingest(store: Store, stream: StreamConfig, data: dict[str, Any]) -> None:
    rows = pa.table(data).to_pylist()
    for row in rows:
        row["ts"] = row["ts"].isoformat()
    import json

    batch = parse_batch(stream, json.dumps(rows).encode(), "json")
    store.streams.append_batch(
        stream.name,
        received_at=T0,
        first_ts=batch.first_ts,
        last_ts=batch.last_ts,
        n_rows=batch.n_rows,
        payload=encode(batch.table),
    )


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    path = tmp_path / "reference.csv"
    write_reference(path)
    return path


def test_time_windows_are_judged_once_and_profile_stored_once(
    store: Store, make_stream_config: MakeConfig, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (stream,) = make_stream_config().streams
    ingest(store, stream, frame(1000, seed=2))  # 12:00-13:00, like the reference
    ingest(store, stream, frame(1000, shift=1.0, seed=3, start=T0 + timedelta(hours=1)))
    clock = [T0 + timedelta(hours=1, minutes=5)]
    evaluator = StreamEvaluator(stream, store, clock=lambda: clock[0])
    (calm,) = evaluator.run_pending()
    assert calm.status == "ok" and calm.n_rows == 1000
    assert calm.window_start == T0 and calm.window_end == T0 + timedelta(hours=1)
    assert not calm.dataset_drifted
    assert evaluator.run_pending() == []  # the same window is not judged twice
    clock[0] += timedelta(hours=1)
    (drifted,) = evaluator.run_pending()
    assert drifted.dataset_drifted
    flagged = {c["column"] for c in drifted.columns if c["drifted"]}
    assert {"alcohol", "region"} <= flagged and "acidity" not in flagged
    alcohol = next(c for c in drifted.columns if c["column"] == "alcohol")
    assert alcohol["results"][0]["method"] == "ks" and alcohol["results"][0]["p_value"] < 1e-6
    # A second evaluator (a restart) finds the stored profile instead of recomputing it.
    assert drifted.profile_id == calm.profile_id
    restarted = StreamEvaluator(stream, store, clock=lambda: clock[0])

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference profile was recomputed")

    monkeypatch.setattr("monitor.streams.evaluate.build_profile", no_rebuild)
    assert restarted.profile()[1] == calm.profile_id
    # ... with the thresholds calibrated for the 1,000-row windows: a restart pays nothing
    calibrated = evaluator.profile()[0].thresholds
    assert {size for _, _, size in calibrated} == {1_000}
    assert restarted.profile()[0].thresholds == calibrated


def test_small_window_is_insufficient_data(
    store: Store, make_stream_config: MakeConfig, reference: Path
) -> None:
    (stream,) = make_stream_config().streams
    ingest(store, stream, frame(20, seed=2))
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=2))
    window = evaluator.latest_window()
    assert window is not None
    report = evaluator.evaluate(window.__class__(key="w", start=T0, end=T0 + timedelta(hours=1)))
    assert report is not None and report.status == "insufficient_data" and report.n_rows == 20
    assert report.drift_share is None and report.columns == ()


def test_row_windows(store: Store, make_stream_config: MakeConfig, reference: Path) -> None:
    (stream,) = make_stream_config(stream_table(window={"rows": 300, "min_rows": 100})).streams
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0)
    assert evaluator.run_pending() == []
    ingest(store, stream, frame(250, seed=2))
    ingest(store, stream, frame(250, seed=3, shift=2.0))
    (report,) = evaluator.run_pending()
    assert report.window_key == "rows:0-300" and report.n_rows == 300


def test_files_source(
    store: Store, make_stream_config: MakeConfig, reference: Path, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    pa_csv.write_csv(pa.table(frame(800, shift=1.0, seed=4)), tmp_path / "in" / "a.csv")
    table = stream_table(source={"kind": "files", "glob": "in/*.csv"})
    (stream,) = make_stream_config(table).streams
    (report,) = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1)).run_pending()
    assert report.n_rows == 800 and report.dataset_drifted


def test_html_report_is_rendered_on_a_sample_and_stored(
    store: Store, make_stream_config: MakeConfig, reference: Path
) -> None:
    (stream,) = make_stream_config(stream_table(report={"html": True, "sample_rows": 200})).streams
    ingest(store, stream, frame(1000, shift=1.0, seed=2))
    (report,) = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1)).run_pending()
    assert report.has_html
    html = store.streams.get_drift_html(report.id)
    assert html is not None and html.lstrip().lower().startswith("<!doctype html")
    assert "alcohol" in html


def test_past_window_reference(
    store: Store, make_stream_config: MakeConfig, reference: Path
) -> None:
    week_ago = T0 - timedelta(days=7)
    table = stream_table(reference={"start": week_ago, "end": week_ago + timedelta(hours=1)})
    (stream,) = make_stream_config(table).streams
    ingest(store, stream, frame(1500, seed=5, start=week_ago))
    ingest(store, stream, frame(1000, shift=1.0, seed=6))
    evaluator = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1))
    # The stream's week-old rows (the reference) are judged too, but only the newest
    # backfill windows of that week; the last one holds the current data.
    reports = evaluator.run_pending()
    assert evaluator.profile()[0].n_rows == 1500
    assert len(reports) == stream.window.backfill
    report = reports[-1]
    assert report.n_rows == 1000 and report.dataset_drifted


def test_sql_reference(
    store: Store, make_stream_config: MakeConfig, reference: Path, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    url = f"duckdb:///{tmp_path / 'ref.duckdb'}"
    engine = create_engine(url)
    data = frame(2000, seed=7)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE ref (alcohol DOUBLE, acidity DOUBLE, region VARCHAR)"
        )
        connection.exec_driver_sql(
            "INSERT INTO ref VALUES (?, ?, ?)",
            list(
                zip(
                    data["alcohol"].tolist(),
                    data["acidity"].tolist(),
                    data["region"].tolist(),
                    strict=True,
                )
            ),
        )
    engine.dispose()
    query = "SELECT alcohol, acidity, region FROM ref"
    (stream,) = make_stream_config(stream_table(reference={"url": url, "query": query})).streams
    ingest(store, stream, frame(1000, seed=8))
    # Close the evaluators: their engines hold duckdb connections, which must not
    # outlive the test (nanobind reports them as leaks at interpreter exit).
    judge = StreamEvaluator(stream, store, clock=lambda: T0 + timedelta(hours=1))
    again = StreamEvaluator(stream, store)
    try:
        (report,) = judge.run_pending()
        assert report.status == "ok" and not report.dataset_drifted
        assert again.profile()[0].n_rows == 2000
    finally:
        judge.close()
        again.close()


def test_a_window_stores_its_numerical_shadow_comparison(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    from scipy import stats

    ref = frame(2000, seed=1)
    ref["score"] = np.random.default_rng(2).normal(0.5, 0.1, 2000)
    pa_csv.write_csv(pa.table(ref), tmp_path / "reference.csv")
    table = stream_table(
        window={"rows": 400, "min_rows": 50},
        prediction="score",
        shadow_prediction="shadow_score",
        shadow={"tolerance": 0.05},
    )
    (stream,) = make_stream_config(table).streams
    data = frame(400, seed=5)
    rng = np.random.default_rng(6)
    data["score"] = rng.normal(0.5, 0.1, 400)
    data["shadow_score"] = data["score"] + rng.normal(0.02, 0.05, 400)
    data["shadow_score"][:10] = np.nan  # sent as null: left out of the pairs
    sent = [None if np.isnan(v) else v for v in data["shadow_score"]]
    ingest(store, stream, {**data, "shadow_score": sent})
    (report,) = StreamEvaluator(stream, store, clock=lambda: T0).run_pending()
    shadow = report.shadow
    assert shadow is not None and shadow["status"] == "ok" and shadow["n_pairs"] == 390
    diff = (data["shadow_score"] - data["score"])[10:]
    test = stats.ttest_rel(data["shadow_score"][10:], data["score"][10:])
    interval = test.confidence_interval()
    d = shadow["divergence"]
    assert d["measure"] == "mean_difference" and d["value"] == pytest.approx(diff.mean())
    assert (d["lower"], d["upper"]) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert d["p_value"] == pytest.approx(test.pvalue)
    assert shadow["agreement"] == pytest.approx(np.mean(np.abs(diff) <= 0.05))
    assert "shadow_score" not in {c["column"] for c in report.columns}
