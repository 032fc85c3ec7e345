"""``monitor gate --remote URL``: a running daemon does the run, the gate reads its report.

The conversation, over the runs API:

1. ``POST {url}/v1/runs`` with ``{"benchmarkId": suite, "models": [{"id": model}],
   "baseline": ..., "sample": ...}`` (and ``"tier"`` with ``--tier``) answers
   ``{"runId": ..., "status": "queued"}``;
2. ``GET {url}/v1/runs/{runId}``, polled with growing pauses until the deadline, answers
   the status and ``"runs": [{"model", "run", "status"}]``, ``run`` being the native run id;
3. when ``completed``: ``GET {url}/v1/runs/{run}/report?baseline=...`` answers the
   :class:`GateReport` JSON, the same report a local gate builds; when ``failed``:
   ``GET {url}/v1/runs/{run}`` answers the run with its error;
4. with ``review_wait``, while the report's verdict waits for review: ``GET
   {url}/v1/verdicts/{id}``, polled the same way until a person decides or the wait ends
   (the wait has its own deadline, after the run's).

Nothing is raised for a failure on the way: the caller gets a :class:`RemoteFailure` with
the exit code to use, 2 when the daemon refuses the request (401 or 403: the token;
another 4xx: an unknown suite, model or baseline) and 3 for infrastructure (unreachable,
5xx after retries, the run failed, the deadline passed). Idempotent requests are retried
on connection errors, timeouts, 429 and 5xx; the ``POST`` only when it cannot have started
a run (no connection, 429, 502-504). The token travels in the ``Authorization`` header
only: it is scrubbed from every message and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from monitor.gate.report import EXIT_INFRASTRUCTURE, EXIT_USAGE, GateReport
from monitor.wire.runs import RunOut
from monitor.wire.verdicts import VerdictOut

__all__ = ["TOKEN_ENV", "RemoteFailure", "remote_report"]

# The environment variable the command reads the token from; named in messages.
TOKEN_ENV = "MONITOR_TOKEN"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Announce = Callable[[GateReport], object]
Progress = Callable[[int, int], object]
"""Told the cases a remote run has scored and the cases it will score, as it runs."""

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT, _LAST_REQUEST_TIMEOUT = 30.0, 5.0
_ATTEMPTS = 3
_RETRY_PAUSE = 0.5
_POLL_FIRST, _POLL_GROWTH, _POLL_MAX = 0.5, 1.5, 10.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A 500 may come after the run was created: posting again could start a second one.
_POST_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_PENDING, _FINAL = frozenset({"queued", "running"}), frozenset({"completed", "failed"})
_DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class RemoteFailure:
    """Why a remote gate has no report. ``exit_code`` is 2 (usage: the token, an unknown
    suite, model or baseline) or 3 (infrastructure); ``run`` is the failed run when the
    daemon got that far, for :func:`monitor.gate.render_failure_markdown`."""

    exit_code: int
    message: str
    run: RunOut | None = None


class _Stop(Exception):
    def __init__(self, failure: RemoteFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def remote_report(
    url: str,
    token: str | None,
    suite: str,
    model: str,
    *,
    baseline: int | str | None,
    sample: int | None,
    timeout: float,
    tier: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    allow_dataset_change: bool = False,
    review_wait: float | None = None,
    announce: Announce | None = None,
    progress: Progress | None = None,
) -> GateReport | RemoteFailure:
    """Run ``suite`` against ``model`` on the daemon at ``url`` and return its report, or
    why there is none. ``timeout`` (seconds) bounds the whole exchange, run included (a
    last poll at the deadline gets 5 s to answer); ``baseline`` is a run id or
    ``"production"`` (``None``: the suite's active baseline). With ``review_wait``
    (seconds), a verdict that waits for review is polled until decided or that long, after
    ``announce`` is called with the waiting report. ``progress(done, total)`` hears the
    run's scored and planned cases at each poll while it runs. ``clock`` and ``sleep`` are
    injected so tests control time."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got: {timeout}")
    try:
        shown = _display(url)
    except ValueError as exc:
        return RemoteFailure(EXIT_USAGE, f"--remote: {exc}")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, transport=transport, timeout=_REQUEST_TIMEOUT
    ) as client:
        session = _Session(
            client, shown, token or "", clock() + timeout, timeout, clock, sleep, progress
        )
        try:
            report = await session.gate(
                suite,
                model,
                baseline=baseline,
                sample=sample,
                tier=tier,
                allow_dataset_change=allow_dataset_change,
            )
            if review_wait is None or not isinstance(report, GateReport):
                return report
            if not report.awaiting_review:
                return report
            if announce is not None:
                announce(report)
            return await session.await_review(report, review_wait)
        except _Stop as stop:
            return stop.failure


def _display(url: str) -> str:
    """The URL to show in messages: no credentials, no query string."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"expected an http:// or https:// URL, got {url.split('?')[0]!r}")
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path.rstrip('/')}"


@dataclass(slots=True)
class _Session:
    client: httpx.AsyncClient
    url: str
    token: str
    deadline: float
    timeout: float
    clock: Clock
    sleep: Sleep
    progress: Progress | None = None

    async def gate(
        self,
        suite: str,
        model: str,
        *,
        baseline: int | str | None,
        sample: int | None,
        tier: str | None = None,
        allow_dataset_change: bool = False,
    ) -> GateReport | RemoteFailure:
        body: dict[str, Any] = {
            "benchmarkId": suite,
            "models": [{"id": model}],
            "baseline": baseline,
            "sample": sample,
        }
        if tier is not None:  # an older daemon refuses the key: send it only when asked
            body["tier"] = tier
        started = await self.call("POST", "/v1/runs", json=body, idempotent=False)
        run_id = self._field(started, "runId", "POST /v1/runs")
        log.info("remote run %s of %s on %s started on %s", run_id, suite, model, self.url)
        status = await self.wait(run_id, model)
        entry = self._entry(status, model, run_id)
        native = entry.get("run") if entry else None
        if status["status"] == "failed" or (entry and entry.get("status") == "failed"):
            return await self.failed(suite, model, run_id, native, status)
        if native is None:
            raise self.stop(EXIT_INFRASTRUCTURE, f"remote run {run_id} completed without a run")
        params = {} if baseline is None else {"baseline": str(baseline)}
        if allow_dataset_change:
            params["allow_dataset_change"] = "true"
        answer = await self.call("GET", f"/v1/runs/{native}/report", params=params)
        try:
            return GateReport.model_validate(answer)
        except ValidationError as exc:
            raise self.stop(
                EXIT_INFRASTRUCTURE,
                f"the report of run {native} from {self.url} does not parse (does the daemon"
                f" run the same monitor version?): {_first_error(exc)}",
            ) from None

    async def await_review(self, report: GateReport, wait: float) -> GateReport:
        """``report`` once its verdict is decided, or as it is after ``wait`` seconds."""
        verdict_id = report.verdict.id
        end = self.clock() + wait
        self.deadline = max(self.deadline, end)
        pause = _POLL_FIRST
        while (remaining := end - self.clock()) > 0:
            await self.sleep(min(pause, remaining))
            pause = min(pause * _POLL_GROWTH, _POLL_MAX)
            answer = await self.call("GET", f"/v1/verdicts/{verdict_id}")
            try:
                verdict = VerdictOut.model_validate(answer)
            except ValidationError as exc:
                raise self.stop(
                    EXIT_INFRASTRUCTURE,
                    f"verdict {verdict_id} from {self.url} does not parse: {_first_error(exc)}",
                ) from None
            if verdict.review != "needs_review":
                return report.reviewed(verdict)
            log.debug("verdict %s still waits for review", verdict_id)
        return report

    async def wait(self, run_id: str, model: str) -> dict[str, Any]:
        """Poll the run until it is final, pausing longer each time, up to the deadline
        (telling ``progress`` the cases scored so far, when the daemon reports them)."""
        pause = _POLL_FIRST
        while True:
            doc = await self.call("GET", f"/v1/runs/{run_id}")
            status = self._field(doc, "status", f"GET /v1/runs/{run_id}")
            self._report_progress(doc, model, run_id)
            if status in _FINAL:
                return doc  # type: ignore[no-any-return]  # _field checked it is a dict
            if status not in _PENDING:
                raise self.stop(
                    EXIT_INFRASTRUCTURE, f"remote run {run_id}: unexpected status {status!r}"
                )
            log.debug("remote run %s: %s", run_id, status)
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise self.stop(
                    EXIT_INFRASTRUCTURE,
                    f"remote run {run_id} did not finish within {self.timeout:g} s (last"
                    f" status: {status}); it may still be going on at {self.url}",
                )
            await self.sleep(min(pause, remaining))
            pause = min(pause * _POLL_GROWTH, _POLL_MAX)

    async def failed(
        self, suite: str, model: str, run_id: str, native: Any, status: dict[str, Any]
    ) -> RemoteFailure:
        """The failure of a run that ended ``failed``, with the native run if it exists."""
        if native is None:
            reason = status.get("error") or "the daemon gave no reason"
            message = f"remote run {run_id} of {suite} on {model} failed: {reason}"
            return self.failure(EXIT_INFRASTRUCTURE, message)
        run = None
        try:
            run = RunOut.model_validate(await self.call("GET", f"/v1/runs/{native}"))
        except (_Stop, ValidationError) as exc:
            log.warning("cannot read failed run %s: %s", native, self._scrub(str(exc)))
        reason = (run.error if run else None) or status.get("error") or "no reason given"
        message = f"run {native} of {suite} on {model} failed: {reason}"
        return self.failure(EXIT_INFRASTRUCTURE, message, run)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One request with bounded retries; the decoded JSON answer."""
        retried_statuses = _RETRY_STATUSES if idempotent else _POST_RETRY_STATUSES
        attempts = 0
        while True:
            attempts += 1
            # A request at the deadline (the last poll) still gets a short while to answer.
            remaining = max(self.deadline - self.clock(), _LAST_REQUEST_TIMEOUT)
            try:
                response = await self.client.request(
                    method, path, json=json, params=params, timeout=min(_REQUEST_TIMEOUT, remaining)
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never sent: retry
                problem = f"cannot connect: {str(exc) or type(exc).__name__}"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if not idempotent:
                    raise self.stop(
                        EXIT_INFRASTRUCTURE,
                        f"{method} {self.url}{path}: {problem} (not retried: it may have"
                        " started a run)",
                    ) from None
            else:
                if response.status_code not in retried_statuses:
                    return self.read(method, path, response)
                problem = f"HTTP {response.status_code}{_detail(response)}"
            if attempts >= _ATTEMPTS or self.clock() >= self.deadline:
                break
            await self.pause(attempts, f"{method} {path}: {problem}")
        raise self.stop(
            EXIT_INFRASTRUCTURE,
            f"{method} {self.url}{path} failed after {attempts} attempt(s): {problem}",
        )

    async def pause(self, attempt: int, problem: str) -> None:
        delay = min(_RETRY_PAUSE * 2 ** (attempt - 1), max(self.deadline - self.clock(), 0.0))
        log.warning("%s; retrying in %.1f s", self._scrub(problem), delay)
        await self.sleep(delay)

    def read(self, method: str, path: str, response: httpx.Response) -> Any:
        """The JSON of a final answer, or the failure it stands for."""
        code, where = response.status_code, f"{method} {self.url}{path}"
        if code == 401:
            raise self.stop(
                EXIT_USAGE,
                f"{where}: the daemon refused the token (401{_detail(response)}); set"
                f" {TOKEN_ENV} to a token from the daemon's [[server.tokens]]",
            )
        if code == 403:
            raise self.stop(
                EXIT_USAGE,
                f"{where}: the token lacks the scope for this request (403{_detail(response)});"
                " the gate needs a token with the 'write' scope",
            )
        if 400 <= code < 500:
            raise self.stop(EXIT_USAGE, f"{where}: refused ({code}{_detail(response)})")
        if not 200 <= code < 300:
            raise self.stop(EXIT_INFRASTRUCTURE, f"{where}: HTTP {code}{_detail(response)}")
        try:
            return response.json()
        except ValueError:
            raise self.stop(
                EXIT_INFRASTRUCTURE, f"{where}: the answer is not JSON (is it a monitor daemon?)"
            ) from None

    def _field(self, doc: Any, key: str, where: str) -> str:
        if not isinstance(doc, dict) or doc.get(key) is None:
            raise self.stop(EXIT_INFRASTRUCTURE, f"{where}: the answer has no {key!r}")
        return str(doc[key])

    def _report_progress(self, doc: dict[str, Any], model: str, run_id: str) -> None:
        entry = self._entry(doc, model, run_id) if self.progress is not None else None
        done, total = (entry.get("cases"), entry.get("casesPlanned")) if entry else (None, None)
        if self.progress is not None and isinstance(done, int) and isinstance(total, int):
            self.progress(done, total)  # an older daemon reports neither: nothing shown

    def _entry(self, status: dict[str, Any], model: str, run_id: str) -> dict[str, Any] | None:
        """The status document's entry for ``model`` (the only entry, whatever its name)."""
        runs = status.get("runs")
        entries = [e for e in runs if isinstance(e, dict)] if isinstance(runs, list) else []
        for entry in entries:
            if entry.get("model") == model:
                return entry
        if len(entries) == 1:
            return entries[0]
        log.debug("remote run %s names no run of %s", run_id, model)
        return None

    def failure(self, code: int, message: str, run: RunOut | None = None) -> RemoteFailure:
        return RemoteFailure(code, self._scrub(message), run)

    def stop(self, code: int, message: str) -> _Stop:
        return _Stop(self.failure(code, message))

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def _detail(response: httpx.Response) -> str:
    """``: <what the server said>``, short, from FastAPI's ``detail`` when there is one."""
    try:
        body = response.json()
        said = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        said = response.text
    text = said if isinstance(said, str) else str(said)
    text = " ".join(text.split())[:_DETAIL_LIMIT]
    return f": {text}" if text else ""


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    return f"{len(errors)} problem(s); first: {where}: {first['msg']}"
