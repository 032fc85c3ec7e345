"""The canary's polling against a fake daemon behind ``httpx.MockTransport``, on a fake
clock: what it counts, how it stops, and which failure gets which exit code."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from monitor.cli.canary import canary
from monitor.gate import RemoteFailure
from monitor.gate.canary import CanaryReport, CanarySettings, watch
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


@dataclass
class FakeDaemon:
    """Each stream's reports, newest first; ``arrive`` adds windows as the clock passes."""

    streams: dict[str, list[dict[str, Any]]]
    arrive: dict[float, tuple[str, dict[str, Any]]] = field(default_factory=dict)
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
                self.streams[name].insert(0, doc)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
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


async def run(daemon: FakeDaemon, duration: float = 60, margin: float = 0.0) -> Any:
    settings = CanarySettings("prod", "cand", duration, 5, margin=margin)
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
    shown = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", synopsis)
    defined = [flag for param in canary.params for flag in param.opts if flag != "--help"]
    assert sorted(shown) == sorted(defined)
    for flag in defined:
        assert f"| `{flag}" in text, f"docs/ci.md has no table row for {flag}"
