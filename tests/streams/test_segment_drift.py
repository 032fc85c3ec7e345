"""Drift per segment on a stream: two ingested windows, a stream with a ``region``
segment where only one region moves; the report's segments, the API's form, the
``/metrics`` series, and segment profiles kept across a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor import __version__
from monitor.api.streams import DriftReportOut
from monitor.config import StreamConfig
from monitor.metrics.collector import StoreCollector
from monitor.store import Store
from monitor.streams.batch import encode, parse_batch
from monitor.streams.evaluate import StreamEvaluator
from tests.streams.conftest import MakeConfig, stream_table

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
REGIONS = np.array(["north", "south"], dtype=object)


def frame(n: int, *, seed: int, start: datetime = T0, north_shift: float = 0.0) -> dict[str, Any]:
    """Rows of two regions; ``north_shift`` moves both numerical columns of north only."""
    rng = np.random.default_rng(seed)
    region = rng.choice(REGIONS, n, p=[0.6, 0.4])
    north = region == "north"
    return {
        "ts": [start + timedelta(seconds=i * 3600 / n) for i in range(n)],
        "alcohol": rng.normal(10, 1, n) + north_shift * north,
        "acidity": rng.lognormal(0, 0.5, n) * np.where(north, 1 + north_shift, 1.0),
        "region": region,
    }


def ingest(store: Store, stream: StreamConfig, data: dict[str, Any]) -> None:
    rows = pa.table(data).to_pylist()
    for row in rows:
        row["ts"] = row["ts"].isoformat()
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
def stream(make_stream_config: MakeConfig, tmp_path: Path) -> StreamConfig:
    pa_csv.write_csv(pa.table(frame(5000, seed=1)), tmp_path / "reference.csv")
    table = stream_table(segments=["region"])
    return make_stream_config(table).streams[0]


def by_segment(segments: Any) -> dict[str, dict[str, Any]]:
    return {s["segment"]: s for s in segments}


def test_only_the_moved_segment_drifts_across_a_restart(
    store: Store, stream: StreamConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(store, stream, frame(1500, seed=3, north_shift=0.8))
    ingest(store, stream, frame(1500, seed=7, start=T0 + timedelta(hours=1), north_shift=0.8))
    clock = [T0 + timedelta(hours=1, minutes=5)]
    (first,) = StreamEvaluator(stream, store, clock=lambda: clock[0]).run_pending()
    segments = by_segment(first.segments)
    assert set(segments) == {"north", "south", "__other__"}
    north, south = segments["north"], segments["south"]
    assert north["status"] == "ok" and north["dataset_drifted"] and north["largest"]
    assert set(north["drifted_columns"]) == {"alcohol", "acidity"}
    assert north["n_rows"] + south["n_rows"] == first.n_rows == 1500
    assert south["status"] == "ok" and south["drift_share"] == 0.0 and not south["largest"]
    assert [c["column"] for c in south["columns"]] == ["alcohol", "acidity"]
    assert segments["__other__"]["status"] == "insufficient_reference"
    # The stored report and the API's form carry the same segments.
    stored = store.streams.get_drift_report(first.id)
    assert stored is not None and stored.segments == first.segments
    assert DriftReportOut.of(first).model_dump()["segments"] == list(first.segments)

    # A restart finds the segment profiles (and their calibrated thresholds) stored.
    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("a segment profile was recomputed")

    monkeypatch.setattr("monitor.drift.segments.build_profile", no_rebuild)
    clock[0] += timedelta(hours=1)
    (second,) = StreamEvaluator(stream, store, clock=lambda: clock[0]).run_pending()
    again = by_segment(second.segments)
    assert again["north"]["dataset_drifted"] and not again["south"]["dataset_drifted"]

    registry = CollectorRegistry()
    registry.register(StoreCollector(store, version=__version__, streams=[stream.name]))
    text = generate_latest(registry).decode()
    labels = 'column="region",segment="north",stream="wine"'
    assert f"monitor_stream_segment_dataset_drifted{{{labels}}} 1.0" in text
    assert f"monitor_stream_segment_drift_rows{{{labels}}} {again['north']['n_rows']}.0" in text
    south_labels = 'column="region",segment="south",stream="wine"'
    assert f"monitor_stream_segment_drift_share{{{south_labels}}} 0.0" in text
    # Not judged: its rows are exported, its share is absent rather than a fake 0.
    other = 'column="region",segment="__other__",stream="wine"'
    assert f"monitor_stream_segment_drift_rows{{{other}}} 0.0" in text
    assert f"monitor_stream_segment_drift_share{{{other}}}" not in text
    assert 'monitor_stream_segment_drift_max_share{column="region",stream="wine"} 1.0' in text


def test_a_stream_without_segments_stores_none(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    pa_csv.write_csv(pa.table(frame(2000, seed=4)), tmp_path / "reference.csv")
    (plain,) = make_stream_config().streams
    ingest(store, plain, frame(500, seed=5))
    evaluator = StreamEvaluator(plain, store, clock=lambda: T0 + timedelta(hours=1, minutes=1))
    (report,) = evaluator.run_pending()
    assert report.status == "ok" and report.segments == ()
