"""A stream joined to a shadow stream by record id, on SQLite and on PostgreSQL: the
shadow stream's predictions are stored with its batches, each production window looks
its records' ids up in the store, and shadow records arriving later are joined while
the window's lag lasts; past it the window is final and stays as it is. The figures are
checked against statsmodels (Wilson) and scipy (paired t)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from monitor.config import Config, StreamConfig
from monitor.store import Store
from monitor.store.ingest import PendingBatch
from monitor.streams.batch import encode, parse_batch
from monitor.streams.evaluate import StreamEvaluator
from monitor.streams.shadow import indexed_predictions
from tests.store.conftest import store_url  # noqa: F401  (the fixture, on both backends)
from tests.streams.conftest import MakeConfig, stream_table
from tests.streams.test_evaluate import T0

N = 200
END = T0 + timedelta(hours=1)  # the window [T0, END) closes here
LAG = timedelta(minutes=10)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:  # noqa: F811
    shared = Store(store_url)
    shared.upgrade()
    yield shared
    shared.close()


def config(make_stream_config: MakeConfig, tmp_path: Path, kind: str) -> Config:
    rng = np.random.default_rng(0)
    reference = {
        "ts": [T0.isoformat()] * 500,
        "alcohol": rng.normal(10.5, 0.3, 500),
        "pred": [f"class_{k}" for k in rng.integers(0, 3, 500)]
        if kind == "categorical"
        else rng.normal(0.5, 0.1, 500),
    }
    pa_csv.write_csv(pa.table(reference), tmp_path / "reference.csv")
    common: dict[str, Any] = {
        "numerical": ["alcohol"],
        "categorical": [],
        "prediction": "pred",
        "prediction_kind": kind,
        "window": {"every": "1h", "min_rows": 50},
    }
    production = stream_table(
        name="churn", shadow={"stream": "churn-shadow", "max_lag": "10m"}, **common
    )
    return make_stream_config(production, stream_table(name="churn-shadow", **common))


def post(store: Store, stream: StreamConfig, rows: list[dict[str, Any]], at: datetime) -> None:
    """Store ``rows`` as the ingest API does: the batch, and for a shadow stream its
    predictions by record id, in one transaction."""
    batch = parse_batch(stream, json.dumps(rows).encode(), "json")
    pending = PendingBatch(
        stream.name,
        received_at=at,
        first_ts=batch.first_ts,
        last_ts=batch.last_ts,
        n_rows=batch.n_rows,
        payload=encode(batch.table),
        predictions=indexed_predictions(stream, batch.table),
    )
    store.streams.append_pending([pending], key_ttl=timedelta(hours=1))


def rows(ids: range, predictions: Any) -> list[dict[str, Any]]:
    return [
        {
            "ts": (T0 + timedelta(seconds=i * 3600 / N)).isoformat(),
            "id": f"r{i}",
            "alcohol": 10.0 + (i % 7) / 7,
            "pred": predictions[i],
        }
        for i in ids
    ]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_window_joins_the_shadow_streams_predictions_by_record_id(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    production, shadow = config(make_stream_config, tmp_path, "categorical").streams
    rng = np.random.default_rng(3)
    predicted = [f"class_{k}" for k in rng.integers(0, 3, N)]
    shadowed = [p if rng.random() > 0.2 else "class_9" for p in predicted]
    post(store, production, rows(range(N), predicted), at=END)
    # The shadow model answered 180 of the window's records, and 40 others (another
    # window's, or records production never sent: they join nothing).
    post(store, shadow, rows(range(20, N), shadowed), at=END)
    others = [{**r, "id": f"x{i}"} for i, r in enumerate(rows(range(40), shadowed))]
    post(store, shadow, others, at=END)

    clock = Clock(END + timedelta(minutes=1))
    (report,) = StreamEvaluator(production, store, clock=clock).run_pending()

    joined = report.shadow
    assert joined is not None
    differ = sum(predicted[i] != shadowed[i] for i in range(20, N))
    assert (joined["status"], joined["n_rows"], joined["n_pairs"]) == ("ok", N, N - 20)
    assert joined["agreement"] == 1 - differ / (N - 20)
    low, high = proportion_confint(differ, N - 20, alpha=0.05, method="wilson")
    d = joined["divergence"]
    assert d["measure"] == "disagreement_share" and d["value"] == differ / (N - 20)
    assert d["lower"] == pytest.approx(low, abs=1e-12) and d["upper"] == pytest.approx(high)
    assert joined["stream"] == "churn-shadow" and joined["state"] == "provisional"
    assert report.shadow_due_at == END + LAG
    # Read back as every reader sees it (API, /metrics, alert rules): the same document.
    (latest,) = [r for r in store.streams.latest_drift_reports() if r.stream == "churn"]
    assert latest.shadow == joined


def test_a_numerical_join_reports_the_paired_differences(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    production, shadow = config(make_stream_config, tmp_path, "numerical").streams
    rng = np.random.default_rng(4)
    predicted = rng.normal(0.5, 0.1, N)
    shadowed = predicted + rng.normal(0.03, 0.05, N)
    post(store, production, rows(range(N), predicted.tolist()), at=END)
    post(store, shadow, rows(range(N), shadowed.tolist()), at=END)

    (report,) = StreamEvaluator(production, store, clock=Clock(END + LAG)).run_pending()

    joined = report.shadow
    assert joined is not None and joined["n_pairs"] == N
    test = stats.ttest_rel(shadowed, predicted)  # the stored text round-trips exactly
    interval = test.confidence_interval()
    d = joined["divergence"]
    assert d["value"] == pytest.approx(float(np.mean(shadowed - predicted)), rel=1e-12)
    assert (d["lower"], d["upper"]) == (pytest.approx(interval.low), pytest.approx(interval.high))
    assert d["p_value"] == pytest.approx(test.pvalue)
    # Judged when its lag was already over: final at once, nothing left open.
    assert joined["state"] == "final" and report.shadow_due_at is None
    assert store.streams.open_shadow_reports("churn", limit=10) == []


def test_shadow_records_arriving_late_are_joined_until_the_lag_is_over(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    production, shadow = config(make_stream_config, tmp_path, "categorical").streams
    predicted = [f"class_{i % 3}" for i in range(N)]
    shadowed = [p if i % 4 else "class_9" for i, p in enumerate(predicted)]
    post(store, production, rows(range(N), predicted), at=END)
    post(store, shadow, rows(range(100), shadowed), at=END)
    clock = Clock(END + timedelta(minutes=1))
    evaluator = StreamEvaluator(production, store, clock=clock)
    (report,) = evaluator.run_pending()
    assert report.shadow is not None and report.shadow["n_pairs"] == 100
    assert evaluator.shadow.refresh() == []  # nothing new: nothing read again

    # 80 more shadow answers within the lag: the window joins them when they arrive.
    post(store, shadow, rows(range(100, 180), shadowed), at=END + timedelta(minutes=5))
    clock.now = END + timedelta(minutes=6)
    (rejoined,) = evaluator.shadow.refresh()
    assert rejoined.id == report.id and rejoined.shadow is not None
    assert (rejoined.shadow["n_pairs"], rejoined.shadow["state"]) == (180, "provisional")
    differ = sum(predicted[i] != shadowed[i] for i in range(180))
    assert rejoined.shadow["divergence"]["value"] == differ / 180
    stored = store.streams.get_drift_report(report.id)
    assert stored is not None and stored.shadow == rejoined.shadow

    # The last 20 arrive after the lag (END + 10m): the window closes without them, at
    # whatever time the next refresh runs, and is never re-opened.
    post(store, shadow, rows(range(180, N), shadowed), at=END + LAG + timedelta(seconds=1))
    clock.now = END + timedelta(minutes=30)
    (closed,) = evaluator.shadow.refresh()
    assert closed.shadow is not None
    assert (closed.shadow["n_pairs"], closed.shadow["state"]) == (180, "final")
    assert closed.shadow_due_at is None
    assert store.streams.open_shadow_reports("churn", limit=10) == []
    post(store, shadow, rows(range(180, N), predicted), at=END + timedelta(minutes=40))
    clock.now = END + timedelta(minutes=41)
    assert evaluator.shadow.refresh() == []
    final = store.streams.get_drift_report(report.id)
    assert final is not None and final.shadow == closed.shadow


def test_a_shadow_record_sent_again_replaces_its_prediction_and_retention_drops_them(
    store: Store, make_stream_config: MakeConfig, tmp_path: Path
) -> None:
    _, shadow = config(make_stream_config, tmp_path, "categorical").streams
    twice = rows(range(3), ["a", "b", "c"]) + rows(range(1), ["z"])  # r0 twice in one batch
    post(store, shadow, twice, at=END)
    ids = ["r0", "r1", "r2", "r9"]
    assert store.streams.predictions_for("churn-shadow", ids) == {"r0": "z", "r1": "b", "r2": "c"}
    assert store.streams.predictions_for("churn-shadow", ids, until=END - LAG) == {}
    assert store.streams.latest_prediction_at("churn-shadow") == END
    store.streams.delete_batches_before("churn-shadow", END + timedelta(seconds=1))
    assert store.streams.predictions_for("churn-shadow", ids) == {}
