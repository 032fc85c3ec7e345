"""The HTTP API and /metrics, in process over ASGI, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.api import create_app
from monitor.metrics.collector import StoreCollector
from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def add_run(
    store: Store, status: RunStatus, *, value: float = 0.9, minute: int = 0, suite: str = "s"
) -> int:
    at = T0 + timedelta(minutes=minute)
    run_id = store.runs.create_run(
        suite=suite, model="m", trigger="schedule", dataset_sha256="d" * 64, config_hash="c", at=at
    )
    metrics = (
        [MetricValue("accuracy", value, value - 0.1, value + 0.05, 2)]
        if status is RunStatus.SUCCEEDED
        else []
    )
    cases = [
        CaseResult("k1", {"x": 1}, "a", "a", {"accuracy": 1.0}, 0.01),
        CaseResult("k2", {"x": 2}, "b", None, {}, None, "timeout", "slow"),
    ]
    store.runs.finish_run(
        run_id,
        status=status,
        at=at + timedelta(seconds=3),
        cases=cases,
        metrics=metrics,
        error=None if status is RunStatus.SUCCEEDED else "boom",
    )
    return run_id


def make_app(store: Store) -> httpx.AsyncClient:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store, version=__version__))
    app = create_app(store, registry, version=__version__)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api.test")


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with make_app(store) as http:
        yield http


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    answer = await client.get("/readyz")
    assert answer.status_code == 200 and answer.json() == {"status": "ready"}


async def test_readyz_is_503_with_reason_before_migrations(tmp_path: Path) -> None:
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        async with make_app(fresh) as http:
            answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable" and "migrations" in answer.json()["reason"]
    finally:
        fresh.close()


async def test_runs_list_filters_and_pages(store: Store, client: httpx.AsyncClient) -> None:
    ids = [add_run(store, RunStatus.SUCCEEDED, minute=i) for i in range(3)]
    failed = add_run(store, RunStatus.FAILED, minute=5)
    page = (await client.get("/v1/runs", params={"limit": 2})).json()
    assert [r["id"] for r in page["runs"]] == [failed, ids[2]] and page["next_before"] == ids[2]
    rest = (await client.get("/v1/runs", params={"limit": 2, "before": page["next_before"]})).json()
    assert [r["id"] for r in rest["runs"]] == [ids[1], ids[0]]
    only_failed = (await client.get("/v1/runs", params={"status": "failed"})).json()["runs"]
    assert [r["id"] for r in only_failed] == [failed] and only_failed[0]["error"] == "boom"
    assert (await client.get("/v1/runs", params={"status": "weird"})).status_code == 422


async def test_run_detail_cases_and_404(store: Store, client: httpx.AsyncClient) -> None:
    run_id = add_run(store, RunStatus.SUCCEEDED)
    run = (await client.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "succeeded" and run["duration_seconds"] == 3.0
    assert run["created_at"].endswith("Z") or run["created_at"].endswith("+00:00")
    assert run["metrics"] == [
        {
            "name": "accuracy",
            "value": 0.9,
            "lower": 0.8,
            "upper": pytest.approx(0.95),
            "n": 2,
            "detail": None,
        }
    ]
    # Finished without operational figures: error rate from the stored cases, the rest
    # unknown (null), never zero.
    assert run["operations"]["error_rate"] == 0.5 and run["operations"]["cost"] is None
    assert run["slices"] == [] and run["slice_gaps"] == []
    cases = (await client.get(f"/v1/runs/{run_id}/cases")).json()
    assert [c["case_id"] for c in cases] == ["k1", "k2"] and cases[1]["error_kind"] == "timeout"
    missing = await client.get("/v1/runs/999")
    assert missing.status_code == 404 and missing.json() == {"detail": "run 999 not found"}
    assert (await client.get("/v1/runs/999/cases")).status_code == 404


async def test_metrics_read_the_store(store: Store, client: httpx.AsyncClient) -> None:
    add_run(store, RunStatus.SUCCEEDED, value=0.7, minute=0)
    add_run(store, RunStatus.SUCCEEDED, value=0.9, minute=1)
    add_run(store, RunStatus.FAILED, minute=2)
    answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }
    pair = (("model", "m"), ("suite", "s"))
    score_key = (("metric", "accuracy"), ("model", "m"), ("suite", "s"))
    assert samples[("monitor_eval_score", score_key)] == 0.9
    assert samples[("monitor_eval_score_lower", score_key)] == pytest.approx(0.8)
    assert samples[("monitor_eval_score_upper", score_key)] == pytest.approx(0.95)
    finished = "monitor_runs_finished_total"
    assert samples[(finished, (("model", "m"), ("status", "succeeded"), ("suite", "s")))] == 2
    assert samples[(finished, (("model", "m"), ("status", "failed"), ("suite", "s")))] == 1
    assert (
        samples[("monitor_last_run_timestamp_seconds", pair)]
        == (T0 + timedelta(minutes=2, seconds=3)).timestamp()
    )
    assert (
        samples[("monitor_last_success_timestamp_seconds", pair)]
        == (T0 + timedelta(minutes=1, seconds=3)).timestamp()
    )
    assert samples[("monitor_store_up", ())] == 1
    assert (
        samples[
            (
                "monitor_build_info",
                (
                    ("python_version", __import__("platform").python_version()),
                    ("version", __version__),
                ),
            )
        ]
        == 1
    )
    openmetrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_metrics_answer_when_the_store_does_not() -> None:
    broken = Store("postgresql+psycopg://nobody:pw-secret@127.0.0.1:1/none")
    try:
        async with make_app(broken) as http:
            text = (await http.get("/metrics")).text
        assert "monitor_store_up 0.0" in text and "pw-secret" not in text
    finally:
        broken.close()


async def test_openapi_documents_the_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    routes = {path: sorted(operations) for path, operations in spec["paths"].items()}
    assert routes == {
        "/healthz": ["get"],
        "/metrics": ["get"],
        "/readyz": ["get"],
        "/v1/alerts": ["get"],
        "/v1/alerts/dead-letters": ["get"],
        "/v1/alerts/dead-letters/discard": ["post"],
        "/v1/alerts/dead-letters/redrive": ["post"],
        "/v1/audit": ["get"],
        "/v1/baselines": ["get", "post"],
        "/v1/baselines/{baseline_id}": ["get"],
        "/v1/drift/{report_id}": ["get"],
        "/v1/drift/{report_id}/report.html": ["get"],
        "/v1/runs": ["get", "post"],
        "/v1/runs/{run_id}": ["get"],
        "/v1/runs/{run_id}/cases": ["get"],
        "/v1/runs/{run_id}/report": ["get"],
        "/v1/runs/{run_id}/report.html": ["get"],
        "/v1/runs/{run_id}/results": ["get"],
        "/v1/runs/{run_id}/verdict": ["get"],
        "/v1/streams/{name}/labels": ["post"],
        "/v1/streams/{name}/records": ["post"],
        "/v1/streams/{name}/reports": ["get"],
        "/v1/suites/{suite}/leaderboard": ["get"],
        "/v1/verdicts": ["get"],
        "/v1/verdicts/{verdict_id}": ["get"],
        "/v1/verdicts/{verdict_id}/review": ["post"],
    }
    body = spec["paths"]["/v1/runs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["benchmarkId", "models"]
    assert "$ref" not in str(body)  # written out in place: resolvable in this document
    assert (await client.get("/docs")).status_code == 200
