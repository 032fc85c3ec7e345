"""Baseline and verdict routes through a real server: promote with a write token (who is
recorded), refusals with the reason, the report route judging on demand and reusing the
stored verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from monitor.records import CaseResult, RunStatus
from monitor.store import Store
from tests.api.conftest import READ, WRITE, MakeConfig, served_app
from tests.servers import deadline

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def finished(store: Store, correct: list[int], *, status: RunStatus = RunStatus.SUCCEEDED) -> int:
    run_id = store.runs.create_run(
        suite="qa",
        model="prod",
        trigger="schedule",
        dataset_sha256="d" * 64,
        config_hash="c",
        at=T0,
    )
    cases = [
        CaseResult(
            f"c{i}",
            {"question": f"q{i}"},
            "a",
            prediction="a" if ok else "b",
            scores={"exact-match": float(ok), "f1-score": float(ok)},
        )
        for i, ok in enumerate(correct)
    ]
    store.runs.finish_run(
        run_id,
        status=status,
        at=T0 + timedelta(seconds=1),
        cases=cases,
        metrics=[],
        error=None if status is RunStatus.SUCCEEDED else "boom",
    )
    return run_id


def test_promote_list_and_report(make_config: MakeConfig, store: Store) -> None:
    base = finished(store, [1] * 100)
    worse = finished(store, [1] * 60 + [0] * 40)
    failed = finished(store, [], status=RunStatus.FAILED)
    with (
        served_app(make_config(), store) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        no_baseline = http.get(f"/v1/runs/{worse}/report", headers=READ)
        assert no_baseline.status_code == 409
        assert "has no baseline: promote a run" in no_baseline.json()["detail"]

        refused = http.post("/v1/baselines", json={"run_id": failed}, headers=WRITE)
        assert refused.status_code == 409 and "only a succeeded run" in refused.json()["detail"]
        missing = http.post("/v1/baselines", json={"run_id": 999}, headers=WRITE)
        assert missing.status_code == 404
        stray = http.post("/v1/baselines", json={"run_id": base, "who": "x"}, headers=WRITE)
        assert stray.status_code == 422

        promoted = http.post("/v1/baselines", json={"run_id": base, "reason": "v1"}, headers=WRITE)
        assert promoted.status_code == 201, promoted.text
        body = promoted.json()
        assert (body["promoted_by"], body["reason"], body["active"]) == ("ci", "v1", True)
        listed = http.get("/v1/baselines", params={"suite": "qa"}, headers=READ).json()
        assert [b["run_id"] for b in listed] == [base]
        assert http.get(f"/v1/baselines/{body['id']}", headers=READ).json() == body

        assert http.get(f"/v1/runs/{worse}/verdict", headers=READ).status_code == 404
        report = http.get(f"/v1/runs/{worse}/report", headers=READ)
        assert report.status_code == 200, report.text
        doc = report.json()
        assert doc["exit_code"] == 1 and doc["verdict"]["outcome"] == "regressed"
        assert doc["baseline"]["id"] == base and doc["run"]["id"] == worse
        # The verdict is now stored, and asking again reuses it.
        verdict = http.get(f"/v1/runs/{worse}/verdict", headers=READ).json()
        assert verdict["id"] == doc["verdict"]["id"]
        again = http.get(f"/v1/runs/{worse}/report", headers=READ).json()
        assert again["verdict"]["id"] == verdict["id"]
        page = http.get("/v1/verdicts", params={"suite": "qa"}, headers=READ).json()
        assert [v["id"] for v in page["verdicts"]] == [verdict["id"]]

        not_judged = http.get(f"/v1/runs/{failed}/report", headers=READ)
        assert not_judged.status_code == 409 and "boom" in not_judged.json()["detail"]
        assert http.get("/v1/runs/999/report", headers=READ).status_code == 404


def test_review_refusals_and_the_audit_route(make_config: MakeConfig, store: Store) -> None:
    base = finished(store, [1] * 100)
    worse = finished(store, [1] * 60 + [0] * 40)  # a scheduled run: never held for review
    config = make_config(suite={"review": "always"})
    with served_app(config, store) as url, httpx.Client(base_url=url) as http:
        promoted = http.post("/v1/baselines", json={"run_id": base, "reason": "v1"}, headers=WRITE)
        assert promoted.status_code == 201
        verdict = http.get(f"/v1/runs/{worse}/report", headers=READ).json()["verdict"]
        assert verdict["review"] is None
        body = {"decision": "reject", "reason": "no"}
        free = http.post(f"/v1/verdicts/{verdict['id']}/review", json=body, headers=WRITE)
        assert free.status_code == 409 and "needs no review" in free.json()["detail"]
        missing = http.post("/v1/verdicts/999/review", json=body, headers=WRITE)
        assert missing.status_code == 404
        odd = {"decision": "maybe", "reason": "x"}
        assert (
            http.post(f"/v1/verdicts/{verdict['id']}/review", json=odd, headers=WRITE).status_code
            == 422
        )

        page = http.get("/v1/audit", headers=READ).json()
        (entry,) = page["entries"]
        assert (entry["action"], entry["actor"], entry["reason"]) == (
            "baseline.promoted",
            "ci",
            "v1",
        )
        assert entry["details"]["run_id"] == base and page["next_before"] is None
        since = http.get("/v1/audit", params={"since": entry["at"]}, headers=READ).json()
        assert [e["id"] for e in since["entries"]] == [entry["id"]]
        later = "2999-01-01T00:00:00+00:00"
        assert http.get("/v1/audit", params={"since": later}, headers=READ).json()["entries"] == []
        assert http.get("/v1/audit", params={"action": "nope"}, headers=READ).status_code == 422
        backwards = {"since": later, "until": entry["at"]}
        empty = http.get("/v1/audit", params=backwards, headers=READ).json()
        assert empty == {"entries": [], "next_before": None}
        number = http.get("/v1/audit", params={"until": "0.5"}, headers=READ)
        assert number.status_code == 422 and "ISO 8601" in number.text
        far = {"since": "9999-12-31T23:59:59-05:00"}
        assert http.get("/v1/audit", params=far, headers=READ).json()["entries"] == []
        early = {"until": "0001-01-01T00:00:00+05:00"}
        assert http.get("/v1/audit", params=early, headers=READ).json()["entries"] == []


def test_the_audit_route_knows_every_action_the_store_logs() -> None:
    from typing import get_args

    from monitor.api.audit import Action
    from monitor.records import AUDIT_ACTIONS

    assert get_args(Action) == AUDIT_ACTIONS
