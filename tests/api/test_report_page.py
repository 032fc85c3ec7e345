"""``GET /v1/runs/{id}/report.html`` through a real server: the gate's report as a page,
with a change chart per comparison and trends over the suite x model's recent runs, under
the same read access as the other run routes and a policy that lets nothing run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store
from tests.api.conftest import READ, WRITE, MakeConfig, served_app
from tests.servers import deadline
from tests.streams.test_html_report import parse

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def finished(
    store: Store, correct: int, *, model: str = "prod", status: RunStatus = RunStatus.SUCCEEDED
) -> int:
    """A run of ``qa`` with ``correct`` of 100 cases right, and its aggregates."""
    run_id = store.runs.create_run(
        suite="qa", model=model, trigger="schedule", dataset_sha256="d" * 64, config_hash="c", at=T0
    )
    oks = [i < correct for i in range(100)]
    cases = [
        CaseResult(
            f"c{i}",
            {"question": f"q{i} <script>alert(1)</script>"},
            "a",
            prediction="the answer a" if ok else "<b>no</b> idea at all",
            scores={"exact-match": float(ok), "f1-score": float(ok)},
        )
        for i, ok in enumerate(oks)
    ]
    share = correct / 100
    metrics = [
        MetricValue("exact-match", share, share - 0.05, share + 0.05, 100),
        MetricValue("f1-score", share, None, None, 100),
    ]
    store.runs.finish_run(
        run_id,
        status=status,
        at=T0 + timedelta(seconds=1),
        cases=cases,
        metrics=metrics,
        error=None if status is RunStatus.SUCCEEDED else "boom",
    )
    return run_id


def svgs(page: str, cls: str) -> list[dict[str, str | None]]:
    return [dict(a) for tag, a in parse(page).tags if tag == "svg" and dict(a).get("class") == cls]


def test_the_report_page(make_config: MakeConfig, store: Store) -> None:
    older = [finished(store, n) for n in (97, 99, 98)]
    base = finished(store, 100)
    finished(store, 10, status=RunStatus.FAILED)  # not a point of the trend
    finished(store, 50, model="other")  # another model's run: not either
    worse = finished(store, 60)
    later = finished(store, 90)  # after the reported run: the trend ends at the run
    with (
        served_app(make_config(), store) as url,
        httpx.Client(base_url=url, timeout=deadline(30)) as http,
    ):
        path = f"/v1/runs/{worse}/report.html"
        assert http.get(path).status_code == 401
        no_baseline = http.get(path, headers=READ)
        assert no_baseline.status_code == 409
        assert "has no baseline" in no_baseline.json()["detail"]
        assert http.post("/v1/baselines", json={"run_id": base}, headers=WRITE).status_code == 201

        page = http.get(path, headers=READ)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        charts = svgs(page.text, "change-chart")
        assert [c["data-outcome"] for c in charts] == ["regressed", "regressed"]
        trends = svgs(page.text, "trend")
        points = str(len(older) + 2)  # the earlier runs, the baseline and the run
        assert [(t["data-metric"], t["data-points"]) for t in trends] == [
            ("exact-match", points),
            ("f1-score", points),
        ]
        text = "".join(parse(page.text).text)
        assert f"run {later}" not in text
        assert "<script>alert(1)</script>" in text  # the input, as text
        assert "script" not in {tag for tag, _ in parse(page.text).tags}
        # The same verdict as the JSON report, stored once.
        report = http.get(f"/v1/runs/{worse}/report", headers=READ).json()
        assert f"verdict {report['verdict']['id']} of" in text

        short = http.get(path, params={"trend_runs": 2}, headers=READ)
        assert [t["data-points"] for t in svgs(short.text, "trend")] == ["2", "2"]
        assert http.get(path, params={"trend_runs": 0}, headers=READ).status_code == 422
        assert http.get("/v1/runs/999/report.html", headers=READ).status_code == 404
