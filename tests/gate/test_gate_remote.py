"""The ``--remote`` client against a fake daemon behind ``httpx.MockTransport``.

Time is faked (a clock that the fake ``sleep`` advances), so back-off and the deadline are
tested without waiting. The end-to-end test against a real daemon lives with the command.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from monitor.gate import (
    EXIT_INFRASTRUCTURE,
    EXIT_USAGE,
    GateReport,
    RemoteFailure,
    remote_report,
    render_failure_markdown,
    render_json,
)
from monitor.records import RunStatus
from monitor.wire.runs import RunOut
from tests.gate import samples

URL = "http://monitor.test:8080"
TOKEN = "tok-5ecret-d0-not-print"
REPORT = samples.regressed()
NATIVE = REPORT.run.id


@dataclass
class FakeTime:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeDaemon:
    """The runs API as the gate sees it. ``answers`` overrides a route with a list of
    (status, body) answers, taken in turn (the last one repeats)."""

    running_polls: int = 2
    final: str = "completed"
    cases: list[dict[str, Any]] = field(default_factory=list)
    """Per poll, the progress fields of the run's entry (an older daemon sends none)."""
    report: Any = None
    answers: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    polls: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "unknown token"})
        route = f"{request.method} {request.url.path}"
        if route in self.answers:
            queue = self.answers[route]
            status, body = queue.pop(0) if len(queue) > 1 else queue[0]
            return httpx.Response(status, json=body)
        return self.answer(route)

    def answer(self, route: str) -> httpx.Response:
        if route == "POST /v1/runs":
            return httpx.Response(202, json={"runId": "r-7", "status": "queued"})
        if route == "GET /v1/runs/r-7":
            self.polls += 1
            status = "running" if self.polls <= self.running_polls else self.final
            entry = {"model": "model-x", "run": NATIVE, "status": status}
            if self.cases:
                entry |= self.cases[min(self.polls, len(self.cases)) - 1]
            return httpx.Response(200, json={"runId": "r-7", "status": status, "runs": [entry]})
        if route == f"GET /v1/runs/{NATIVE}/report":
            body = self.report if self.report is not None else json.loads(render_json(REPORT))
            return httpx.Response(200, json=body)
        if route == f"GET /v1/runs/{NATIVE}":
            return httpx.Response(200, content=failed_run().model_dump_json())
        return httpx.Response(404, json={"detail": f"no route {route}"})

    def routes(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def failed_run() -> RunOut:
    run = samples.run(
        NATIVE,
        status=RunStatus.FAILED,
        n_errors=480,
        error="error budget exceeded: 480 of 500 cases failed (connection)",
    )
    return RunOut.of(run)


async def gate(
    daemon: Any,
    time: FakeTime | None = None,
    *,
    token: str | None = TOKEN,
    url: str = URL,
    timeout: float = 600,
    baseline: int | str | None = "production",
    progress: Any = None,
) -> GateReport | RemoteFailure:
    time = time or FakeTime()
    return await remote_report(
        url,
        token,
        "qa-suite",
        "model-x",
        baseline=baseline,
        sample=50,
        timeout=timeout,
        transport=httpx.MockTransport(daemon),
        clock=time.clock,
        sleep=time.sleep,
        progress=progress,
    )


@pytest.fixture(autouse=True)
def _token_never_logged(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    yield
    assert TOKEN not in caplog.text


async def test_completed_run_returns_the_daemons_report() -> None:
    daemon, time = FakeDaemon(), FakeTime()
    result = await gate(daemon, time)
    assert result == REPORT
    assert daemon.routes() == [
        "POST /v1/runs",
        "GET /v1/runs/r-7",
        "GET /v1/runs/r-7",
        "GET /v1/runs/r-7",
        f"GET /v1/runs/{NATIVE}/report",
    ]
    assert json.loads(daemon.requests[0].content) == {
        "benchmarkId": "qa-suite",
        "models": [{"id": "model-x"}],
        "baseline": "production",
        "sample": 50,
    }
    assert daemon.requests[-1].url.params["baseline"] == "production"
    assert {r.headers["authorization"] for r in daemon.requests} == {f"Bearer {TOKEN}"}
    assert time.sleeps == [0.5, 0.75]  # pauses grow between polls


async def test_progress_hears_the_scored_and_planned_cases_at_each_poll() -> None:
    cases = [{"cases": 0, "casesPlanned": None}, {"cases": 20, "casesPlanned": 50}]
    cases.append({"cases": 50, "casesPlanned": 50})
    heard: list[tuple[int, int]] = []
    result = await gate(FakeDaemon(cases=cases), progress=lambda *p: heard.append(p))
    assert result == REPORT
    assert heard == [(20, 50), (50, 50)]  # nothing before the run started


async def test_an_older_daemon_without_progress_fields_shows_none() -> None:
    heard: list[tuple[int, int]] = []
    assert await gate(FakeDaemon(), progress=lambda *p: heard.append(p)) == REPORT
    assert heard == []


async def test_without_a_baseline_the_report_uses_the_active_one() -> None:
    daemon = FakeDaemon(running_polls=0)
    assert await gate(daemon, baseline=None) == REPORT
    assert json.loads(daemon.requests[0].content)["baseline"] is None
    assert "baseline" not in daemon.requests[-1].url.params


async def test_failed_run_is_an_infrastructure_failure_with_the_runs_error() -> None:
    daemon = FakeDaemon(final="failed")
    result = await gate(daemon)
    assert isinstance(result, RemoteFailure)
    assert result.exit_code == EXIT_INFRASTRUCTURE
    assert result.message == (
        f"run {NATIVE} of qa-suite on model-x failed:"
        " error budget exceeded: 480 of 500 cases failed (connection)"
    )
    assert result.run == failed_run()
    assert daemon.routes()[-1] == f"GET /v1/runs/{NATIVE}"
    comment = render_failure_markdown("qa-suite", "model-x", result.run, result.message)
    assert "**Infrastructure error**" in comment and "regress" not in comment.lower()


async def test_run_that_failed_before_it_started_uses_the_status_error() -> None:
    status = {"runId": "r-7", "status": "failed", "error": "model-x: unknown model", "runs": []}
    daemon = FakeDaemon(answers={"GET /v1/runs/r-7": [(200, status)]})
    result = await gate(daemon)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE, "remote run r-7 of qa-suite on model-x failed: model-x: unknown model"
    )


async def test_unknown_token_is_a_usage_error_naming_the_variable() -> None:
    daemon = FakeDaemon()
    result = await gate(daemon, token="wrong-token")
    assert isinstance(result, RemoteFailure)
    assert result.exit_code == EXIT_USAGE
    assert result.message == (
        f"POST {URL}/v1/runs: the daemon refused the token (401: unknown token);"
        " set MONITOR_TOKEN to a token from the daemon's [[server.tokens]]"
    )
    assert "wrong-token" not in result.message
    assert len(daemon.requests) == 1  # not retried


async def test_missing_token_sends_no_header_and_is_a_usage_error() -> None:
    daemon = FakeDaemon()
    result = await gate(daemon, token=None)
    assert isinstance(result, RemoteFailure) and result.exit_code == EXIT_USAGE
    assert "authorization" not in daemon.requests[0].headers


async def test_token_without_the_scope_is_a_usage_error() -> None:
    # A proxy that echoes the presented token must not get it into the message either.
    detail = f"token 'ci' lacks the 'write' scope (presented Bearer {TOKEN})"
    daemon = FakeDaemon(answers={"POST /v1/runs": [(403, {"detail": detail})]})
    result = await gate(daemon)
    assert isinstance(result, RemoteFailure)
    assert result.exit_code == EXIT_USAGE
    assert result.message == (
        f"POST {URL}/v1/runs: the token lacks the scope for this request (403: token 'ci'"
        " lacks the 'write' scope (presented Bearer ***)); the gate needs a token with the"
        " 'write' scope"
    )


async def test_unknown_suite_is_a_usage_error_with_the_daemons_detail() -> None:
    detail = [{"loc": ["body", "benchmarkId"], "msg": "unknown suite 'qa-suite'"}]
    daemon = FakeDaemon(answers={"POST /v1/runs": [(422, {"detail": detail})]})
    result = await gate(daemon)
    assert isinstance(result, RemoteFailure) and result.exit_code == EXIT_USAGE
    assert "refused (422: " in result.message and "unknown suite 'qa-suite'" in result.message


async def test_unreachable_daemon_is_an_infrastructure_failure_after_retries() -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    time = FakeTime()
    result = await gate(refuse, time)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE,
        f"POST {URL}/v1/runs failed after 3 attempt(s):"
        " cannot connect: [Errno 111] Connection refused",
    )
    assert len(attempts) == 3
    assert time.sleeps == [0.5, 1.0]


async def test_connection_refused_by_a_real_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    time = FakeTime()
    result = await remote_report(
        f"http://127.0.0.1:{port}",
        TOKEN,
        "qa-suite",
        "model-x",
        baseline=None,
        sample=None,
        timeout=60,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert isinstance(result, RemoteFailure)
    assert result.exit_code == EXIT_INFRASTRUCTURE
    assert result.message.startswith(f"POST http://127.0.0.1:{port}/v1/runs failed after 3")
    assert "cannot connect" in result.message


async def test_server_errors_while_polling_are_retried() -> None:
    running = {"runId": "r-7", "status": "running", "runs": []}
    done = {
        "runId": "r-7",
        "status": "completed",
        "runs": [{"model": "model-x", "run": NATIVE, "status": "completed"}],
    }
    polls = [(503, {"detail": "restarting"}), (500, "oops"), (200, running), (200, done)]
    daemon = FakeDaemon(answers={"GET /v1/runs/r-7": polls})
    assert await gate(daemon) == REPORT


async def test_persistent_server_errors_are_an_infrastructure_failure() -> None:
    daemon = FakeDaemon(answers={"GET /v1/runs/r-7": [(502, "<html>Bad Gateway</html>")]})
    result = await gate(daemon)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE,
        f"GET {URL}/v1/runs/r-7 failed after 3 attempt(s): HTTP 502: <html>Bad Gateway</html>",
    )


async def test_a_500_on_the_post_is_not_retried_as_it_may_have_started_a_run() -> None:
    daemon = FakeDaemon(answers={"POST /v1/runs": [(500, {"detail": "internal error"})]})
    result = await gate(daemon)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE, f"POST {URL}/v1/runs: HTTP 500: internal error"
    )
    assert daemon.routes() == ["POST /v1/runs"]


async def test_a_read_timeout_on_the_post_is_not_retried() -> None:
    calls: list[httpx.Request] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    result = await gate(slow)
    assert isinstance(result, RemoteFailure) and result.exit_code == EXIT_INFRASTRUCTURE
    assert "not retried: it may have started a run" in result.message
    assert len(calls) == 1


async def test_run_that_does_not_finish_in_time_is_an_infrastructure_failure() -> None:
    daemon, time = FakeDaemon(running_polls=10_000), FakeTime()
    result = await gate(daemon, time, timeout=60)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE,
        f"remote run r-7 did not finish within 60 s (last status: running);"
        f" it may still be going on at {URL}",
    )
    assert sum(time.sleeps) == pytest.approx(60)
    assert max(time.sleeps) == 10.0  # pauses grow to a cap
    assert time.sleeps[:4] == [0.5, 0.75, 1.125, 1.6875]
    assert daemon.polls == len(time.sleeps) + 1


async def test_a_report_that_does_not_parse_is_an_infrastructure_failure() -> None:
    daemon = FakeDaemon(running_polls=0, report={"verdict": {}, "exit_code": 1})
    result = await gate(daemon)
    assert isinstance(result, RemoteFailure) and result.exit_code == EXIT_INFRASTRUCTURE
    assert result.message.startswith(
        f"the report of run {NATIVE} from {URL} does not parse (does the daemon run the same"
        " monitor version?): "
    )


async def test_an_answer_that_is_not_json_is_an_infrastructure_failure() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a login page</html>")

    result = await gate(html)
    assert result == RemoteFailure(
        EXIT_INFRASTRUCTURE,
        f"POST {URL}/v1/runs: the answer is not JSON (is it a monitor daemon?)",
    )


@pytest.mark.parametrize("url", ["monitor.internal:8080", "ftp://monitor", "http://"])
async def test_a_url_that_is_not_http_is_a_usage_error(url: str) -> None:
    result = await gate(FakeDaemon(), url=url)
    assert isinstance(result, RemoteFailure) and result.exit_code == EXIT_USAGE
    assert result.message.startswith("--remote: expected an http:// or https:// URL")


async def test_credentials_in_the_url_stay_out_of_messages() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = await gate(refuse, url="http://user:pa55word@monitor.test/base/?key=k3y")
    assert isinstance(result, RemoteFailure)
    assert "pa55word" not in result.message and "k3y" not in result.message
    assert result.message.startswith("POST http://monitor.test/base/v1/runs failed")
