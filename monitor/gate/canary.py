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

With a suite (``--suite``), the candidate's scheduled runs are evidence too: at every poll
the canary reads ``GET {url}/v1/verdicts?suite=...&model=...``, the verdicts the daemon
judged since the start (ids above the newest seen at the start). One whose outcome is
``regressed`` and that review did not approve rolls back at once, naming it; the others
are listed in the report (and, on a promotion, their ids tag the promoted version).

Exit codes: 0 promote, 1 roll back, 2 usage (a bad URL, the token refused, a stream without
an accuracy), 3 infrastructure (the daemon unreachable, a stream missing, no labelled
record of a model by the end). ``monitor canary --promote-alias`` promotes on
:attr:`CanaryReport.outcome` ``promote`` (:mod:`monitor.registry.promotion`). The reports
are written by :mod:`monitor.gate.canary_report`.
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

__all__ = ["CanaryLook", "CanaryReport", "CanarySettings", "CanaryVerdict", "watch"]

log = logging.getLogger(__name__)

_PAGE = 500
_VERDICT_PAGE = 200  # the API's largest
Announce = Callable[["CanaryLook"], object]


@dataclass(frozen=True, slots=True)
class CanarySettings:
    """What ``monitor canary`` was asked: the two streams, how long and how often to look,
    and the test's error rate ``alpha``, mixing scale ``tau`` and promotion ``margin``.
    ``model`` is the candidate's configured model (its ``model_version`` resolved from its
    registry alias at the start); with a ``suite``, that suite's verdicts of ``model``
    are read too."""

    production: str
    candidate: str
    duration: float
    interval: float
    alpha: float = 0.05
    tau: float = 0.05
    margin: float = 0.0
    model: str | None = None
    model_version: str | None = None
    suite: str | None = None

    def __post_init__(self) -> None:
        if self.suite is not None and self.model is None:
            raise ValueError("reading a suite's verdicts needs the candidate's model")


class CanaryVerdict(BaseModel):
    """A verdict of the candidate's run the daemon judged during the watch."""

    model_config = ConfigDict(frozen=True)

    id: int
    run_id: int
    outcome: str
    review: str | None = None
    reason: str = ""
    created_at: datetime

    @property
    def regressed(self) -> bool:
        """Regressed, and not approved by a person: a roll-back."""
        return self.outcome == "regressed" and self.review != "approved"


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
    model: str | None = None
    model_version: str | None = None
    suite: str | None = None
    verdicts: list[CanaryVerdict] = []
    rolled_back_by: int | None = None  # the regressed verdict's id

    @property
    def rolled_back_by_verdict(self) -> CanaryVerdict | None:
        return next((v for v in self.verdicts if v.id == self.rolled_back_by), None)

    @property
    def last(self) -> CanaryLook:
        return self.looks[-1]

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.outcome == "promote" else EXIT_REGRESSED

    @property
    def summary(self) -> str:
        last, word = self.last, "promote" if self.outcome == "promote" else "roll back"
        version = "" if self.model_version is None else f" (version {self.model_version})"
        verdicts = ""
        if self.suite is not None:
            verdicts = f"; {len(self.verdicts)} verdict(s) of suite {self.suite}"
            if (by := self.rolled_back_by_verdict) is not None:
                verdicts += f", verdict {by.id} (run {by.run_id}) regressed"
        return (
            f"canary {self.candidate}{version} vs {self.production}: {word} after"
            f" {fmt.seconds(last.elapsed)}{' (early)' if self.early else ''}{verdicts}; accuracy"
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
            verdicts_since = await session.newest_verdict_id(settings)
            looks: list[CanaryLook] = []
            verdicts: list[CanaryVerdict] = []
            while True:
                counts = [
                    await session.counts(name, since[name])
                    for name in (settings.production, settings.candidate)
                ]
                (xp, n_p), (xc, n_c) = counts
                verdicts = await session.verdicts(settings, verdicts_since)
                look = CanaryLook.of(clock() - start, test.look(xp, n_p, xc, n_c))
                looks.append(look)
                if announce is not None:
                    announce(look)
                decision = test.decision
                if any(v.regressed for v in verdicts):
                    decision = "rollback"
                if decision is not None or clock() >= end:
                    break
                await sleep(max(min(settings.interval, end - clock()), 0.0))
        except Stop as stop:
            return stop.failure
    return _report(settings, looks, verdicts, started_at, decision)


def _report(
    settings: CanarySettings,
    looks: list[CanaryLook],
    verdicts: list[CanaryVerdict],
    started_at: datetime,
    decision: str | None,
) -> CanaryReport | RemoteFailure:
    last, level = looks[-1], level_text(settings.alpha)
    # The oldest regressed verdict decides: a roll-back on it needs no stream evidence.
    regressed = next((v for v in reversed(verdicts) if v.regressed), None)
    for name, n in (
        (settings.production, last.n_production),
        (settings.candidate, last.n_candidate),
    ):
        if n == 0 and regressed is None:
            return RemoteFailure(
                EXIT_INFRASTRUCTURE,
                f"stream {name!r}: no labelled record in a window judged during the canary's"
                f" {fmt.seconds(settings.duration)}; nothing to compare (are predictions and"
                " labels reaching the daemon?)",
            )
    if regressed is not None:
        review = "" if regressed.review is None else f" (review: {regressed.review})"
        reason = (
            f"verdict {regressed.id} of suite {settings.suite!r} on model"
            f" {settings.model!r} (run {regressed.run_id}) is regressed{review}:"
            f" {regressed.reason.rstrip('.')}"
        )
    elif decision == "rollback":
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
        model=settings.model,
        model_version=settings.model_version,
        suite=settings.suite,
        verdicts=list(reversed(verdicts)),  # oldest first
        rolled_back_by=None if regressed is None else regressed.id,
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

    async def newest_verdict_id(self, settings: CanarySettings) -> int:
        """The newest verdict of the suite x model when the watch starts (0: none; also
        when no suite is watched)."""
        if settings.suite is None:
            return 0
        found, _ = await self._verdict_page(settings, {"limit": "1"})
        return found[0].id if found else 0

    async def verdicts(self, settings: CanarySettings, since: int) -> list[CanaryVerdict]:
        """The suite x model's verdicts above ``since``, newest first (with their current
        review)."""
        found: list[CanaryVerdict] = []
        if settings.suite is None:
            return found
        params = {"limit": str(_VERDICT_PAGE)}
        while True:
            page, next_before = await self._verdict_page(settings, params)
            found.extend(v for v in page if v.id > since)
            if next_before is None or next_before <= since:
                return found
            params["before"] = str(next_before)

    async def _verdict_page(
        self, settings: CanarySettings, params: dict[str, str]
    ) -> tuple[list[CanaryVerdict], int | None]:
        assert settings.suite is not None and settings.model is not None
        query = {"suite": settings.suite, "model": settings.model, **params}
        page = await self.call("GET", "/v1/verdicts", params=query)
        try:
            verdicts = [CanaryVerdict.model_validate(v) for v in page["verdicts"]]
            next_before = page.get("next_before")
            return verdicts, None if next_before is None else int(next_before)
        except (TypeError, KeyError, ValueError, AttributeError):
            raise self.stop(
                EXIT_INFRASTRUCTURE, "GET /v1/verdicts: the answer holds no list of verdicts"
            ) from None

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
        if response.status_code == 404 and path.startswith("/v1/streams/"):
            raise self.stop(EXIT_INFRASTRUCTURE, f"{where}: no such stream on the daemon (404)")
        if response.status_code == 403:
            raise self.stop(
                EXIT_USAGE, f"{where}: the token lacks the 'read' scope the canary needs (403)"
            )
        return _Session.read(self, method, path, response)
