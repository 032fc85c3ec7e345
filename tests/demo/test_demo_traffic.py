"""The demo's production traffic: healthy wines look like the reference, a degrading
model's traffic shifts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from monitor.config import parse_config
from monitor.demo import DemoModel
from monitor.demo.traffic import (
    FEATURES,
    REGIONS,
    SHIFT,
    sample_rows,
    stream_table,
    write_reference,
)
from monitor.streams.oneoff import compare_files


@pytest.fixture(scope="module")
def model() -> DemoModel:
    return DemoModel()


def test_traffic_rows_match_the_stream_schema(model: DemoModel, tmp_path: Path) -> None:
    write_reference(tmp_path / "ref.csv", model)
    config = parse_config({"streams": [stream_table(tmp_path / "ref.csv")]}, base_dir=tmp_path)
    (stream,) = config.streams
    (row,) = sample_rows(model, np.random.default_rng(0), 1, level=0.0)
    assert (
        set(row)
        == {"ts", "id", "region", "prediction", "shadow_prediction", "label", *FEATURES.values()}
        == {stream.timestamp, stream.record_id, stream.prediction, stream.label}
        | {stream.shadow_prediction}
        | set(stream.numerical)
        | set(stream.categorical)
    )
    assert row["region"] in REGIONS and stream.segments == ("region",)
    assert stream.fairness is not None and stream.fairness.positive in model.labels
    assert row["prediction"] in model.labels and row["label"] in model.labels
    # The shadow model never degrades: at level 0 it answers as production does.
    assert row["shadow_prediction"] == row["prediction"]
    assert stream.measures_performance


def test_a_degraded_model_is_less_often_right_on_its_traffic() -> None:
    """The traffic's true classes are what the stream's realized accuracy is scored on:
    right most of the time while healthy, much less once degraded."""
    healthy_model, degraded_model = DemoModel(), DemoModel()
    degraded_model.set_level(1.0)
    rng = np.random.default_rng(2)

    def accuracy(model: DemoModel) -> float:
        rows = sample_rows(model, rng, 300, level=model.level())
        return float(np.mean([r["prediction"] == r["label"] for r in rows]))

    assert accuracy(healthy_model) > 0.85 > 0.6 > accuracy(degraded_model)


def test_degraded_traffic_shifts_and_healthy_traffic_does_not(model: DemoModel) -> None:
    rng = np.random.default_rng(1)
    reference = [r["alcohol"] for r in sample_rows(model, rng, 1000, level=0.0)]
    healthy = [r["alcohol"] for r in sample_rows(model, rng, 500, level=0.0)]
    degraded = [r["alcohol"] for r in sample_rows(model, rng, 500, level=0.6)]
    assert stats.ks_2samp(reference, healthy).pvalue > 0.01
    assert stats.ks_2samp(reference, degraded).pvalue < 1e-6
    assert np.mean(degraded) > np.mean(reference)


def test_degraded_traffic_drifts_as_a_dataset(model: DemoModel, tmp_path: Path) -> None:
    """The stream's own drift engine, on 200-row windows as the demo judges them: healthy
    traffic is no dataset drift, traffic at the worst level (0.6) is (at least the five
    shifted features of the eight columns: above the default drift_share of 0.5); the
    region, a segment column, never drifts."""
    write_reference(tmp_path / "ref.csv", model)
    config = parse_config({"streams": [stream_table(tmp_path / "ref.csv")]}, base_dir=tmp_path)
    (stream,) = config.streams
    rng = np.random.default_rng(2)
    results = {}
    for level in (0.0, 0.6):
        rows = sample_rows(model, rng, 200, level=level)
        window = tmp_path / f"window-{level}.csv"
        with window.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        results[level] = compare_files(stream, reference=None, current=window, store=None)
    assert not results[0.0].dataset_drifted and results[0.0].drift_share < 0.5
    assert results[0.6].dataset_drifted and results[0.6].drift_share >= 5 / 8
    shifted = {FEATURES[column] for column in SHIFT}
    assert shifted <= set(results[0.6].drifted_columns)
    assert "region" not in results[0.6].drifted_columns
