"""Drift report routes and drift metrics: contract, paging, 404s, cardinality cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.api import create_app
from monitor.metrics.collector import StoreCollector
from monitor.records import NewDriftReport
from monitor.store import Store
from tests.servers import ROOT
from tests.streams.conftest import MakeConfig

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def column(name: str, drifted: bool) -> dict[str, Any]:
    return {
        "column": name,
        "kind": "numerical",
        "drifted": drifted,
        "results": [
            {
                "method": "ks",
                "statistic": 0.3,
                "p_value": 1e-9,
                "threshold": 0.05,
                "drifted": drifted,
                "kind": "distance",
            },
            {
                "method": "psi",
                "statistic": 0.4,
                "p_value": None,
                "threshold": 0.1,
                "drifted": drifted,
                "kind": "distance",
            },
        ],
        "quality": {"missing_share": 0.25, "out_of_range_share": 0.0, "new_categories": []},
        "notes": [],
    }


def add(store: Store, hour: int, *, columns: int = 3, html: str | None = None) -> int:
    report_id = store.streams.add_drift_report(
        NewDriftReport(
            stream="wine",
            window_key=f"w{hour}",
            window_start=T0 + timedelta(hours=hour),
            window_end=T0 + timedelta(hours=hour + 1),
            created_at=T0 + timedelta(hours=hour + 1),
            status="ok",
            n_rows=1000,
            drift_share=1 / 3,
            dataset_drifted=False,
            columns=tuple(column(f"c{i}", i == 0) for i in range(columns)),
            html=html,
        )
    )
    assert report_id is not None
    return report_id


@pytest.fixture
async def client(store: Store, make_stream_config: MakeConfig) -> AsyncIterator[httpx.AsyncClient]:
    config = make_stream_config(max_exported_columns=2)
    registry = CollectorRegistry()
    caps = {s.name: s.max_exported_columns for s in config.streams}
    registry.register(StoreCollector(store, version=__version__, max_columns=caps))
    app = create_app(store, registry, version=__version__, streams=config.streams)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://api.test"
    ) as http:
        yield http


async def test_reports_list_pages_and_detail(client: httpx.AsyncClient, store: Store) -> None:
    ids = [add(store, hour) for hour in range(3)]
    page = (await client.get("/v1/streams/wine/reports", params={"limit": 2})).json()
    assert [r["id"] for r in page["reports"]] == [ids[2], ids[1]]
    assert page["next_before"] == ids[1]
    rest = await client.get("/v1/streams/wine/reports", params={"before": page["next_before"]})
    assert [r["id"] for r in rest.json()["reports"]] == [ids[0]]
    detail = (await client.get(f"/v1/drift/{ids[0]}")).json()
    assert set(detail) == {
        "id", "stream", "window_key", "window_start", "window_end", "created_at", "status",
        "n_rows", "drift_share", "dataset_drifted", "drifted_columns", "columns", "html_url",
        "performance", "segments", "shadow",
    }  # fmt: skip
    assert detail["drifted_columns"] == ["c0"] and detail["html_url"] is None
    assert detail["segments"] == []  # a stream without segments
    assert detail["performance"] is None  # a stream without labels scores no window
    assert detail["shadow"] is None  # nor, without a shadow prediction, compares one
    assert detail["window_start"] == "2024-05-01T00:00:00Z"


async def test_html_route(client: httpx.AsyncClient, store: Store) -> None:
    with_html = add(store, 0, html="<!doctype html><p>drift</p>")
    without = add(store, 1)
    answer = await client.get(f"/v1/drift/{with_html}/report.html")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.text == "<!doctype html><p>drift</p>"
    # Even a page stored by an earlier version (Evidently's scripts) cannot run script.
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"/v1/drift/{with_html}")).json()["html_url"] == (
        f"/v1/drift/{with_html}/report.html"
    )
    assert (await client.get(f"/v1/drift/{without}/report.html")).status_code == 404


async def test_unknown_stream_and_report_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/streams/nope/reports")).status_code == 404
    assert (await client.get("/v1/drift/999")).status_code == 404


async def test_metrics_cap_columns_per_stream(client: httpx.AsyncClient, store: Store) -> None:
    add(store, 0, columns=5)
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    drifted = {
        s.labels["column"]: s.value for s in families["monitor_drift_column_drifted"].samples
    }
    assert drifted == {"c0": 1.0, "c1": 0.0}  # capped at max_exported_columns = 2
    p_values = [
        (s.labels["column"], s.labels["method"]) for s in families["monitor_drift_p_value"].samples
    ]
    assert p_values == [("c0", "ks"), ("c1", "ks")]
    distances = {s.labels["method"] for s in families["monitor_drift_distance"].samples}
    assert distances == {"psi"}
    tests = {s.labels["method"] for s in families["monitor_drift_test_statistic"].samples}
    assert tests == {"ks"}
    share = families["monitor_drift_share"].samples
    assert [(s.labels, s.value) for s in share] == [({"stream": "wine"}, pytest.approx(1 / 3))]
    missing = {s.value for s in families["monitor_drift_missing_share"].samples}
    assert missing == {0.25}


async def test_every_drift_metric_is_documented(client: httpx.AsyncClient, store: Store) -> None:
    add(store, 0)
    store.streams.append_batch(
        "wine", received_at=T0, first_ts=T0, last_ts=T0, n_rows=1, payload=b"x"
    )
    text = (await client.get("/metrics")).text
    names = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(("monitor_drift", "monitor_stream"))
    }
    assert len(names) >= 11
    documented = (ROOT / "docs" / "metrics.md").read_text()
    assert sorted(n for n in names if f"`{n}`" not in documented) == []
