"""The compatible runs API end to end: the daemon's real HTTP server, a real model server
on loopback, runs queued by POST /v1/runs, executed one per suite x model at a time,
polled to completion, and results equal to the stored runs' metrics."""

from __future__ import annotations

import httpx
import pytest

from monitor.records import RunStatus
from monitor.store import Store
from tests.api.conftest import (
    READ,
    WRITE,
    MakeConfig,
    ModelServer,
    finished,
    running,
    status_of,
)
from tests.servers import until


async def test_post_poll_results(make_config: MakeConfig, model_server: ModelServer) -> None:
    config = make_config()
    endpoint = f"{model_server.url}/v1"
    model_server.hold.clear()  # the first run waits at its first request
    async with running(config) as (_, url), httpx.AsyncClient(base_url=url) as http:
        first = await http.post(
            "/v1/runs", json={"benchmarkId": "qa", "models": [{"id": "prod"}]}, headers=WRITE
        )
        assert first.status_code == 202, first.text
        first_id = first.json()["runId"]
        assert first.json() == {"runId": first_id, "status": "queued"}
        assert first_id.startswith("req-") and not first_id.isdigit()

        async def called() -> bool:
            return model_server.calls.get("good", 0) > 0

        await until(called, timeout=30, what="the first run to call the model")

        body = {
            "benchmarkId": "qa",
            "models": [{"id": "prod"}, {"id": "meh", "endpoint": endpoint}],
        }
        second = await http.post("/v1/runs", json=body, headers=WRITE)
        assert second.status_code == 202, second.text
        second_id = second.json()["runId"]
        # prod is busy with the first request: its second run waits its turn, queued.
        waiting = await status_of(http, second_id)
        prod_run = next(r for r in waiting["runs"] if r["model"] == "prod")
        assert prod_run["status"] == "queued"
        assert prod_run["cases"] == 0 and prod_run["casesPlanned"] is None  # not started
        assert waiting["status"] in ("queued", "running")
        first_now = await status_of(http, first_id)
        assert first_now["status"] == "running"
        (held,) = first_now["runs"]  # held at the model: its planned cases, none scored yet
        assert held["casesPlanned"] is not None and 0 <= held["cases"] < held["casesPlanned"]

        model_server.hold.set()
        done = await until(
            lambda: finished(http, second_id), timeout=60, what="the second request to finish"
        )
        results = (await http.get(f"/v1/runs/{second_id}/results", headers=READ)).json()
        first_done = await status_of(http, first_id)

    assert first_done["status"] == "completed"
    assert done["status"] == "completed" and done["error"] is None
    assert done["benchmarkId"] == "qa" and done["completedAt"] is not None
    assert [r["model"] for r in done["runs"]] == ["prod", "meh"]
    assert all(r["status"] == "succeeded" for r in done["runs"])
    # One run per suite x model at a time: the queued prod run started after the first.
    store = Store(config.store.effective_url)
    try:
        first_run = store.runs.get_run(first_done["runs"][0]["run"])
        runs = {r["model"]: store.runs.get_run(r["run"]) for r in done["runs"]}
    finally:
        store.close()
    assert first_run is not None and first_run.finished_at is not None
    # Finished: every planned case scored, the gate's progress at 100%.
    (first_entry,) = first_done["runs"]
    assert first_entry["cases"] == first_entry["casesPlanned"] == first_run.n_cases > 0
    assert first_run.n_planned == first_run.n_cases
    prod, meh = runs["prod"], runs["meh"]
    assert prod is not None and meh is not None
    assert prod.started_at is not None and prod.started_at >= first_run.finished_at
    assert prod.request_id == second_id and prod.trigger == "api"
    assert meh.model == "meh" and meh.request_id == second_id

    assert set(results) == {"benchmarkId", "name", "status", "completedAt", "results"}
    assert results["benchmarkId"] == "qa" and results["name"] == "qa"
    assert results["status"] == "completed"
    (table,) = results["results"]
    assert table["task"] == "question-answering" and table["dataset"] == "squad-mini"
    by_model = {score["model"]: score for score in table["scores"]}
    for name, run in runs.items():
        assert run is not None
        # exact-match and f1-score on 0-100 here, as the SQuAD v2 script reports them.
        assert by_model[name] == {"model": name} | {m.name: 100 * m.value for m in run.metrics}
    assert by_model["prod"]["exact-match"] == 100.0 and by_model["prod"]["f1-score"] == 100.0
    assert by_model["meh"]["exact-match"] == 50.0
    assert {m.name: m.value for m in meh.metrics}["exact-match"] == 0.5  # stored on 0-1
    # The ad-hoc model ran with the openai adapter, sending its id as the model name.
    assert model_server.calls["meh"] == 8 and model_server.calls["good"] == 16


async def test_failed_model_makes_the_request_failed(make_config: MakeConfig) -> None:
    config = make_config(server={"allowed_endpoint_prefixes": ["http://127.0.0.1:9/v1"]})
    body = {
        "benchmarkId": "qa",
        "models": [{"id": "prod"}, {"id": "gone", "endpoint": "http://127.0.0.1:9/v1"}],
        "sample": 3,
    }
    async with running(config) as (_, url), httpx.AsyncClient(base_url=url) as http:
        posted = await http.post("/v1/runs", json=body, headers=WRITE)
        assert posted.status_code == 202, posted.text
        request_id = posted.json()["runId"]
        done = await until(lambda: finished(http, request_id), timeout=60, what="the request")
        results = (await http.get(f"/v1/runs/{request_id}/results", headers=READ)).json()
    assert done["status"] == "failed"
    assert done["error"].startswith("gone: failed: error rate 100% (3 of 3 cases)")
    statuses = {r["model"]: r["status"] for r in done["runs"]}
    assert statuses == {"prod": "succeeded", "gone": "failed"}
    scores = {s["model"]: s for s in results["results"][0]["scores"]}
    assert scores["gone"] == {"model": "gone"}  # no scores from a failed run
    assert scores["prod"]["exact-match"] == 100.0
    store = Store(config.store.effective_url)
    try:
        run = store.runs.get_run(done["runs"][0]["run"])
    finally:
        store.close()
    assert run is not None and run.n_cases == 3  # "sample": 3 ran three cases


async def test_native_routes_stay_numeric(make_config: MakeConfig) -> None:
    async with running(make_config()) as (_, url), httpx.AsyncClient(base_url=url) as http:
        posted = await http.post(
            "/v1/runs", json={"benchmarkId": "qa", "models": [{"id": "prod"}]}, headers=WRITE
        )
        request_id = posted.json()["runId"]
        done = await until(lambda: finished(http, request_id), timeout=60, what="the request")
        run_id = done["runs"][0]["run"]
        native = (await http.get(f"/v1/runs/{run_id}", headers=READ)).json()
        single = (await http.get(f"/v1/runs/{run_id}/results", headers=READ)).json()
        missing = await http.get("/v1/runs/req-nope", headers=READ)
        missing_number = await http.get("/v1/runs/99999999999", headers=READ)
        listed = (await http.get("/v1/runs", headers=READ)).json()["runs"]
    assert native["id"] == run_id and native["status"] == RunStatus.SUCCEEDED
    assert native["request_id"] == request_id and native["trigger"] == "api"
    # The native run keeps 0-1; the compatible results report the same numbers x 100.
    assert {m["name"]: m["value"] for m in native["metrics"]} == {
        "exact-match": 1.0,
        "f1-score": 1.0,
    }
    assert single["results"][0]["scores"] == [
        {"model": "prod", "exact-match": 100.0, "f1-score": 100.0}
    ]
    assert missing.status_code == 404 and missing.json() == {"detail": "run 'req-nope' not found"}
    assert missing_number.status_code == 404
    assert [r["id"] for r in listed] == [run_id]


@pytest.mark.parametrize("metric", ["f1-score", "exact-match"])
async def test_leaderboard_ranks_models(
    make_config: MakeConfig, model_server: ModelServer, metric: str
) -> None:
    config = make_config(suite={"metrics": [metric]})
    endpoint = f"{model_server.url}/v1"
    body = {
        "benchmarkId": "qa",
        "models": [{"id": "meh", "endpoint": endpoint}, {"id": "prod"}],
    }
    async with running(config) as (_, url), httpx.AsyncClient(base_url=url) as http:
        request_id = (await http.post("/v1/runs", json=body, headers=WRITE)).json()["runId"]
        await until(lambda: finished(http, request_id), timeout=60, what="the request")
        board = (await http.get("/v1/suites/qa/leaderboard", headers=READ)).json()
        missing = await http.get("/v1/suites/nope/leaderboard", headers=READ)
    assert board["suite"] == "qa" and board["metric"] == metric
    assert board["higher_is_better"] is True
    assert [(e["rank"], e["model"]) for e in board["entries"]] == [(1, "prod"), (2, "meh")]
    assert board["entries"][0]["value"] == 1.0
    assert missing.status_code == 404
