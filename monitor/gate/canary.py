"""``monitor canary``: watch a candidate model against production on live, labelled traffic.

The data path is the daemon's realized performance (docs/streams.md): one stream per model,
each scored window of which carries ``performance.n_labelled`` and its ``accuracy``, so
``round(accuracy * n_labelled)`` of its records were predicted right. The canary reads
``GET {url}/v1/streams/{name}/reports`` of both streams at every poll, through the gate's
HTTP session (:mod:`monitor.gate.remote`: the same retries, token handling and error
mapping), and adds up the windows judged since it started (report ids above the newest id
seen at the start; a window re-scored by late labels counts with its newest figures).
After each poll :class:`monitor.gate.sequential.SequentialTest` decides: roll back as soon
as the candidate is worse with always-valid confidence, promote early when it is shown not
worse than the margin, else promote when the duration is over.

Exit codes: 0 promote, 1 roll back, 2 usage (a bad URL, the token refused, a stream without
an accuracy), 3 infrastructure (the daemon unreachable, a stream missing, no labelled
record of a model by the end). A promotion is what a later ``--promote-alias`` (the model
registry) will act on: :attr:`CanaryReport.outcome`. The reports are written by
:mod:`monitor.gate.canary_report`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from monitor.gate import formatting as fmt
from monitor.gate.remote import _REQUEST_TIMEOUT, Clock, RemoteFailure, Sleep, _display, _Session
from monitor.gate.remote import _Stop as Stop
from monitor.gate.report import EXIT_INFRASTRUCTURE, EXIT_PASS, EXIT_REGRESSED, EXIT_USAGE
from monitor.gate.sequential import MIN_LABELLED, Evidence, SequentialTest

__all__ = ["CanaryLook", "CanaryReport", "CanarySettings", "watch"]

log = logging.getLogger(__name__)

_PAGE = 500
Announce = Callable[["CanaryLook"], object]


@dataclass(frozen=True, slots=True)
class CanarySettings:
    """What ``monitor canary`` was asked: the two streams, how long and how often to look,
    and the test's error rate ``alpha``, mixing scale ``tau`` and promotion ``margin``."""

    production: str
    candidate: str
    duration: float
    interval: float
    alpha: float = 0.05
    tau: float = 0.05
    margin: float = 0.0


class CanaryLook(BaseModel):
    """The evidence at one poll, ``elapsed`` seconds after the start."""

    model_config = ConfigDict(frozen=True)

    elapsed: float
    n_production: int
    correct_production: int
    n_candidate: int
    correct_candidate: int
    delta: float | None
    p_value: float
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, elapsed: float, e: Evidence) -> CanaryLook:
        return cls(
            elapsed=round(elapsed, 3),
            n_production=e.n_production,
            correct_production=e.correct_production,
            n_candidate=e.n_candidate,
            correct_candidate=e.correct_candidate,
            delta=e.delta,
            p_value=e.p_value,
            lower=_finite(e.lower),
            upper=_finite(e.upper),
        )

    def accuracy(self, which: Literal["production", "candidate"]) -> float | None:
        n = self.n_production if which == "production" else self.n_candidate
        right = self.correct_production if which == "production" else self.correct_candidate
        return right / n if n else None


class CanaryReport(BaseModel):
    """The canary's outcome with its evidence, ready to render. ``looks`` holds every poll
    (the last one decided); ``early`` says the test stopped before ``duration``."""

    model_config = ConfigDict(frozen=True)

    production: str
    candidate: str
    outcome: Literal["promote", "rollback"]
    early: bool
    reason: str
    started_at: datetime
    ended_at: datetime
    duration: float
    alpha: float
    tau: float
    margin: float
    test: str = "mSPRT (normal mixture), difference of accuracies"
    looks: list[CanaryLook]

    @property
    def last(self) -> CanaryLook:
        return self.looks[-1]

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.outcome == "promote" else EXIT_REGRESSED

    @property
    def summary(self) -> str:
        last, word = self.last, "promote" if self.outcome == "promote" else "roll back"
        return (
            f"canary {self.candidate} vs {self.production}: {word} after"
            f" {fmt.seconds(last.elapsed)}{' (early)' if self.early else ''}; accuracy"
            f" {fmt.num(last.accuracy('candidate'))} (n={last.n_candidate}) vs"
            f" {fmt.num(last.accuracy('production'))} (n={last.n_production}), difference"
            f" {fmt.signed(last.delta)}, {level_text(self.alpha)} always-valid interval"
            f" {interval_text(last)}, always-valid p {fmt.p_value(last.p_value)}"
        )


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def interval_text(look: CanaryLook) -> str:
    return f"[{fmt.signed(look.lower)}, {fmt.signed(look.upper)}]"


def level_text(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


async def watch(
    url: str,
    token: str | None,
    settings: CanarySettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    announce: Announce | None = None,
) -> CanaryReport | RemoteFailure:
    """Watch the two streams on the daemon at ``url`` for ``settings.duration`` seconds,
    polling every ``settings.interval``; the report, or why there is none."""
    try:
        shown = _display(url)
    except ValueError as exc:
        return RemoteFailure(EXIT_USAGE, f"--remote: {exc}")
    test = SequentialTest(settings.alpha, settings.tau, settings.margin)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start, started_at = clock(), datetime.now(UTC)
    end = start + settings.duration
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, transport=transport, timeout=_REQUEST_TIMEOUT
    ) as client:
        # Requests may take their retries until a little after the end.
        session = _StreamSession(
            client, shown, token or "", end + _REQUEST_TIMEOUT, settings.duration, clock, sleep
        )
        try:
            since = {
                name: await session.newest_id(name)
                for name in (settings.production, settings.candidate)
            }
            looks: list[CanaryLook] = []
            while True:
                counts = [
                    await session.counts(name, since[name])
                    for name in (settings.production, settings.candidate)
                ]
                (xp, n_p), (xc, n_c) = counts
                look = CanaryLook.of(clock() - start, test.look(xp, n_p, xc, n_c))
                looks.append(look)
                if announce is not None:
                    announce(look)
                decision = test.decision
                if decision is not None or clock() >= end:
                    break
                await sleep(max(min(settings.interval, end - clock()), 0.0))
        except Stop as stop:
            return stop.failure
    return _report(settings, test, looks, started_at, decision)


def _report(
    settings: CanarySettings,
    test: SequentialTest,
    looks: list[CanaryLook],
    started_at: datetime,
    decision: str | None,
) -> CanaryReport | RemoteFailure:
    last, level = looks[-1], level_text(settings.alpha)
    for name, n in (
        (settings.production, last.n_production),
        (settings.candidate, last.n_candidate),
    ):
        if n == 0:
            return RemoteFailure(
                EXIT_INFRASTRUCTURE,
                f"stream {name!r}: no labelled record in a window judged during the canary's"
                f" {fmt.seconds(settings.duration)}; nothing to compare (are predictions and"
                " labels reaching the daemon?)",
            )
    if decision == "rollback":
        reason = (
            f"the candidate is worse: the {level} always-valid interval of the difference"
            f" lies below 0 (always-valid p = {fmt.p_value(last.p_value)}"
            f" <= alpha {settings.alpha:g})"
        )
    elif decision == "promote":
        reason = (
            f"the candidate is not worse than the margin {settings.margin:g}: the {level}"
            " always-valid interval of the difference lies above it"
        )
    else:
        reason = (
            f"not shown worse within {fmt.seconds(settings.duration)}"
            f" (always-valid p = {fmt.p_value(last.p_value)} > alpha {settings.alpha:g})"
        )
        if min(last.n_production, last.n_candidate) < MIN_LABELLED:
            reason += f"; fewer than {MIN_LABELLED} labelled records of a model: not tested"
    return CanaryReport(
        production=settings.production,
        candidate=settings.candidate,
        outcome="rollback" if decision == "rollback" else "promote",
        early=decision is not None,
        reason=reason,
        started_at=started_at,
        ended_at=datetime.now(UTC),
        duration=settings.duration,
        alpha=settings.alpha,
        tau=settings.tau,
        margin=settings.margin,
        looks=looks,
    )


@dataclass(slots=True)
class _StreamSession(_Session):
    """The gate's session, reading stream reports: a missing stream is infrastructure (3)."""

    async def newest_id(self, name: str) -> int:
        page = await self.call("GET", f"/v1/streams/{name}/reports", params={"limit": "1"})
        reports = self._reports(page, name)
        return int(reports[0]["id"]) if reports else 0

    async def counts(self, name: str, since: int) -> tuple[int, int]:
        """Right and labelled records of the windows judged after report ``since``."""
        right = labelled = 0
        params: dict[str, str] = {"limit": str(_PAGE)}
        while True:
            page = await self.call("GET", f"/v1/streams/{name}/reports", params=params)
            for report in self._reports(page, name):
                if int(report["id"]) <= since:
                    return right, labelled
                counted = self._accuracy(report, name)
                if counted is not None:
                    right, labelled = right + counted[0], labelled + counted[1]
            if page.get("next_before") is None:
                return right, labelled
            params["before"] = str(page["next_before"])

    def _reports(self, page: Any, name: str) -> list[dict[str, Any]]:
        if not isinstance(page, dict) or not isinstance(page.get("reports"), list):
            raise self.stop(
                EXIT_INFRASTRUCTURE, f"GET /v1/streams/{name}/reports: the answer has no reports"
            )
        return page["reports"]  # type: ignore[no-any-return]

    def _accuracy(self, report: dict[str, Any], name: str) -> tuple[int, int] | None:
        performance = report.get("performance")
        if not isinstance(performance, dict) or not performance.get("metrics"):
            return None  # not scored yet, or too few labels
        value = next(
            (m.get("value") for m in performance["metrics"] if m.get("metric") == "accuracy"),
            None,
        )
        if value is None:
            raise self.stop(
                EXIT_USAGE,
                f"stream {name!r} reports no accuracy: the canary compares accuracies (add"
                " 'accuracy' to its [streams.performance] metrics)",
            )
        n = int(performance["n_labelled"])
        return round(float(value) * n), n

    def read(self, method: str, path: str, response: httpx.Response) -> Any:
        where = f"{method} {self.url}{path}"
        if response.status_code == 404:
            raise self.stop(EXIT_INFRASTRUCTURE, f"{where}: no such stream on the daemon (404)")
        if response.status_code == 403:
            raise self.stop(
                EXIT_USAGE, f"{where}: the token lacks the 'read' scope the canary needs (403)"
            )
        return _Session.read(self, method, path, response)
