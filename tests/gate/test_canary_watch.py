"""The canary's polling against a fake daemon behind ``httpx.MockTransport``, on a fake
clock: what it counts, how it stops, which failure gets which exit code, and how the
suite's verdicts judged during the watch roll it back (a regressed one not approved by
review) or are listed (the others)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from monitor.cli.canary import canary
from monitor.gate import RemoteFailure
from monitor.gate.canary import CanaryReport, CanarySettings, CanaryVerdict, watch
from monitor.gate.canary_report import (
    render_canary_json,
    render_canary_junit,
    render_canary_markdown,
)
from tests.servers import ROOT

TOKEN = "canary-secret-token-0123456789"


def report(report_id: int, right: int | None, n: int, metric: str = "accuracy") -> dict[str, Any]:
    metrics = [] if right is None else [{"metric": metric, "value": right / n}]
    return {"id": report_id, "performance": {"n_labelled": n, "metrics": metrics}}


def verdict(verdict_id: int, outcome: str, review: str | None = None) -> dict[str, Any]:
    """A verdict as GET /v1/verdicts answers it (fields the canary does not read too)."""
    return {
        "id": verdict_id,
        "run_id": 100 + verdict_id,
        "baseline_run_id": 1,
        "suite": "qa",
        "model": "candidate",
        "outcome": outcome,
        "reason": f"accuracy {outcome}.",
        "created_at": "2026-12-03T06:00:00Z",
        "metrics": [],
        "changes": [],
        "review": review,
    }


@dataclass
class FakeDaemon:
    """Each stream's reports, newest first; ``arrive`` adds windows as the clock passes."""

    streams: dict[str, list[dict[str, Any]]]
    arrive: dict[float, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # of qa x candidate
    verdict_queries: list[dict[str, str]] = field(default_factory=list)
    now: float = 0.0
    page: int = 2  # small pages: the canary must follow next_before
    seen: list[str] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        for at in sorted(self.arrive):
            if at <= self.now:
                name, doc = self.arrive.pop(at)
                (self.verdicts if name == "verdicts" else self.streams[name]).insert(0, doc)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        if request.url.path == "/v1/verdicts":
            return self.list_verdicts(request)
        name = request.url.path.split("/")[3]
        self.seen.append(str(request.url.params))
        if name not in self.streams:
            return httpx.Response(404, json={"detail": f"no stream {name!r}"})
        reports = self.streams[name]
        if "before" in request.url.params:
            before = int(request.url.params["before"])
            reports = [r for r in reports if r["id"] < before]
        limit = min(int(request.url.params["limit"]), self.page)
        chunk = reports[:limit]
        nxt = chunk[-1]["id"] if len(chunk) == limit and len(reports) > limit else None
        return httpx.Response(200, json={"reports": chunk, "next_before": nxt})

    def list_verdicts(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.verdict_queries.append(query)
        assert (query["suite"], query["model"]) == ("qa", "candidate")
        found = [v for v in self.verdicts if int(v["id"]) < int(query.get("before", 10**9))]
        limit = min(int(query["limit"]), self.page)
        chunk = found[:limit]
        nxt = chunk[-1]["id"] if len(chunk) == limit else None
        return httpx.Response(200, json={"verdicts": chunk, "next_before": nxt})


async def run(
    daemon: FakeDaemon, duration: float = 60, margin: float = 0.0, suite: str | None = None
) -> Any:
    settings = CanarySettings(
        "prod", "cand", duration, 5, margin=margin, model="candidate", model_version="3",
        suite=suite,
    )  # fmt: skip
    return await watch(
        "http://daemon.test",
        TOKEN,
        settings,
        transport=httpx.MockTransport(daemon),
        clock=daemon.clock,
        sleep=daemon.sleep,
    )


async def test_it_counts_only_windows_judged_after_it_started_across_pages() -> None:
    daemon = FakeDaemon({"prod": [report(2, 10, 100)], "cand": [report(1, 10, 100)]})
    for i, at in enumerate((4, 9, 14)):
        daemon.arrive[at] = ("prod", report(10 + 2 * i, 90, 100))
        daemon.arrive[at + 0.5] = ("cand", report(11 + 2 * i, 88, 100))
    daemon.arrive[15] = ("prod", report(20, None, 100))  # too few labels: not counted
    result = await run(daemon, duration=30)
    assert isinstance(result, CanaryReport) and result.outcome == "promote"
    assert not result.early and result.last.elapsed == 30
    last = result.last
    assert (last.correct_production, last.n_production) == (270, 300)
    assert (last.correct_candidate, last.n_candidate) == (264, 300)
    assert any("before=" in params for params in daemon.seen)  # it paged
    text = render_canary_markdown(result) + render_canary_json(result) + render_canary_junit(result)
    assert "Promote `cand`" in text and TOKEN not in text


async def test_a_clearly_worse_candidate_is_rolled_back_at_the_first_decisive_look() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.arrive[4] = ("prod", report(1, 95, 100))
    daemon.arrive[4.5] = ("cand", report(2, 55, 100))
    result = await run(daemon)
    assert isinstance(result, CanaryReport)
    assert result.outcome == "rollback" and result.early and result.exit_code == 1
    assert result.last.elapsed == 5 and len(result.looks) == 2
    assert "<failure" in render_canary_junit(result)


async def test_a_candidate_shown_within_the_margin_is_promoted_early() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    for i in range(20):
        daemon.arrive[1 + i] = ("prod", report(2 * i + 1, 900, 1000))
        daemon.arrive[1.5 + i] = ("cand", report(2 * i + 2, 900, 1000))
    result = await run(daemon, duration=600, margin=0.03)
    assert isinstance(result, CanaryReport) and result.outcome == "promote" and result.early
    assert result.last.lower is not None and result.last.lower > -0.03
    assert result.last.elapsed < 600


async def test_a_missing_stream_is_infrastructure() -> None:
    result = await run(FakeDaemon({"prod": []}))
    assert isinstance(result, RemoteFailure) and result.exit_code == 3
    assert "/v1/streams/cand/reports: no such stream" in result.message


async def test_no_labelled_record_by_the_end_is_infrastructure_not_a_promotion() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.arrive[3] = ("prod", report(1, 90, 100))
    result = await run(daemon, duration=20)
    assert isinstance(result, RemoteFailure) and result.exit_code == 3
    assert "stream 'cand': no labelled record" in result.message


async def test_a_stream_without_accuracy_is_a_usage_error() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.arrive[3] = ("cand", report(1, 90, 100, metric="f1"))
    result = await run(daemon)
    assert isinstance(result, RemoteFailure) and result.exit_code == 2
    assert "add 'accuracy' to its [streams.performance] metrics" in result.message


async def test_a_token_without_the_read_scope_is_a_usage_error_and_never_shown() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json={"detail": "no"}))
    result = await watch(
        "http://daemon.test", TOKEN, CanarySettings("prod", "cand", 10, 1), transport=transport
    )
    assert isinstance(result, RemoteFailure) and result.exit_code == 2
    assert "'read' scope" in result.message and TOKEN not in result.message


async def test_an_unreachable_daemon_is_infrastructure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await watch(
        f"http://127.0.0.1:{port}", None, CanarySettings("prod", "cand", 10, 1), sleep=sleep
    )
    assert isinstance(result, RemoteFailure) and result.exit_code == 3
    assert "failed after 3 attempt(s): cannot connect" in result.message


def test_docs_show_and_explain_every_flag_of_the_command() -> None:
    text = (ROOT / "docs" / "ci.md").read_text()
    [synopsis] = re.findall(r"```\n(monitor canary .*?)```", text, re.DOTALL)
    shown = re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", synopsis)
    # Each option as the docs write it: its first form ("-c" for -c/--config).
    defined = [param.opts[0] for param in canary.params if param.opts[0] != "--help"]
    assert sorted(shown) == sorted(defined)
    for flag in defined:
        assert f"| `{flag}" in text, f"docs/ci.md has no table row for {flag}"


# The suite's verdicts of the candidate (--suite)


async def test_a_regressed_verdict_during_the_watch_rolls_back_at_once_naming_it() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    # Judged before the start: not evidence of this canary, regressed or not.
    daemon.verdicts = [verdict(3, "regressed"), verdict(2, "pass")]
    for i in range(12):  # equal streams: the accuracy test alone would not decide
        daemon.arrive[1 + 5 * i] = ("prod", report(2 * i + 1, 85, 100))
        daemon.arrive[1.5 + 5 * i] = ("cand", report(2 * i + 2, 85, 100))
    daemon.arrive[7] = ("verdicts", verdict(4, "pass"))
    daemon.arrive[8] = ("verdicts", verdict(5, "regressed", review="approved"))
    daemon.arrive[9] = ("verdicts", verdict(6, "improved"))
    daemon.arrive[22] = ("verdicts", verdict(7, "regressed", review="needs_review"))
    result = await run(daemon, duration=600, suite="qa")
    assert isinstance(result, CanaryReport)
    assert result.outcome == "rollback" and result.early and result.exit_code == 1
    assert result.last.elapsed == 25  # the first look after verdict 7
    assert result.rolled_back_by == 7 and [v.id for v in result.verdicts] == [4, 5, 6, 7]
    assert "verdict 7 of suite 'qa' on model 'candidate' (run 107) is regressed" in result.reason
    assert "(review: needs_review)" in result.reason
    assert "verdict 7 (run 107) regressed" in result.summary
    assert "(version 3)" in result.summary
    markdown = render_canary_markdown(result)
    assert "| 7 ❌ | 107 | regressed | needs_review |" in markdown
    assert "| 5 | 105 | regressed | approved |" in markdown
    assert "version `3`" in markdown
    junit = render_canary_junit(result)
    # The accuracy test did not fail; the verdicts did.
    assert junit.count("<failure") == 1 and 'name="verdicts"' in junit
    assert '<property name="model_version" value="3" />' in junit
    assert render_canary_json(result).count('"rolled_back_by": 7') == 1
    # It paged through the verdicts and never took one from before the start.
    assert any("before" in q for q in daemon.verdict_queries)


async def test_a_regressed_verdict_rolls_back_without_any_labelled_record() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.arrive[3] = ("verdicts", verdict(1, "regressed", review="rejected"))
    result = await run(daemon, suite="qa")
    assert isinstance(result, CanaryReport) and result.exit_code == 1
    assert result.rolled_back_by == 1 and result.last.n_candidate == 0


async def test_verdicts_that_do_not_regress_are_listed_and_promote_with_the_streams() -> None:
    from monitor.registry.promotion import canary_evidence

    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.arrive[2] = ("prod", report(1, 88, 100))
    daemon.arrive[2.5] = ("cand", report(2, 88, 100))
    daemon.arrive[3] = ("verdicts", verdict(9, "pass"))
    daemon.arrive[4] = ("verdicts", verdict(10, "regressed", review="approved"))
    result = await run(daemon, duration=20, suite="qa")
    assert isinstance(result, CanaryReport) and result.outcome == "promote"
    assert [v.id for v in result.verdicts] == [9, 10] and result.rolled_back_by is None
    evidence = canary_evidence(result)
    assert evidence.tags["monitor.canary.verdict_ids"] == "9,10"
    assert evidence.tags["monitor.canary.verdicts"] == "2"
    assert evidence.tags["monitor.canary.outcome"] == "promote"
    assert evidence.tags["monitor.canary.candidate_counts"] == "88/100"
    assert evidence.tags["monitor.canary.started_at"] == result.started_at.isoformat()
    assert all(key.startswith("monitor.canary.") for key in evidence.tags)
    assert evidence.details["verdict_ids"] == [9, 10]


async def test_without_a_suite_no_verdict_is_read() -> None:
    daemon = FakeDaemon({"prod": [], "cand": []})
    daemon.verdicts = [verdict(1, "regressed")]
    daemon.arrive[2] = ("prod", report(1, 88, 100))
    daemon.arrive[2.5] = ("cand", report(2, 88, 100))
    result = await run(daemon, duration=10)
    assert isinstance(result, CanaryReport) and result.outcome == "promote"
    assert daemon.verdict_queries == [] and result.verdicts == []
    assert "Verdicts of suite" not in render_canary_markdown(result)


def test_a_verdict_regresses_unless_a_person_approved_it() -> None:
    at = "2026-12-03T06:00:00Z"
    regressed = {
        review: CanaryVerdict(id=1, run_id=1, outcome="regressed", review=review, created_at=at)
        for review in (None, "needs_review", "rejected", "approved")
    }
    assert [v.regressed for v in regressed.values()] == [True, True, True, False]
    assert not CanaryVerdict(id=1, run_id=1, outcome="inconclusive", created_at=at).regressed
