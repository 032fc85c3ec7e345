"""Approval gates without a daemon: which verdicts a policy holds, the exit code and
words of a held, approved or rejected verdict, and ``--remote --wait-review`` polling the
verdict (faked time) until it is decided or the wait ends."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from monitor.gate import (
    EXIT_AWAITING_REVIEW,
    GateReport,
    render_json,
    render_junit,
    render_markdown,
)
from monitor.records import Review
from monitor.verdicts.review import review_for
from tests.gate import samples
from tests.gate.test_gate_remote import NATIVE, TOKEN, URL, FakeDaemon, FakeTime

REGRESSED = samples.regressed()


def held(review: str | None, **decided: Any) -> GateReport:
    verdict = REGRESSED.verdict.model_copy(update={"review": review, **decided})
    return GateReport.assemble(verdict, REGRESSED.run, REGRESSED.baseline)


@pytest.mark.parametrize(
    ("policy", "outcome", "trigger", "expected"),
    [
        ("never", "regressed", "gate", None),
        ("on-regression", "regressed", "gate", Review.NEEDS_REVIEW),
        ("on-regression", "inconclusive", "gate", None),
        ("on-regression", "regressed", "api", Review.NEEDS_REVIEW),
        ("on-regression", "regressed", "schedule", None),
        ("always", "pass", "gate", Review.NEEDS_REVIEW),
        ("always", "improved", "bench", None),
    ],
    ids=["never", "regressed", "inconclusive", "api", "scheduled", "always", "bench"],
)
def test_which_verdicts_a_policy_holds(
    policy: Any, outcome: str, trigger: str, expected: Review | None
) -> None:
    assert review_for(policy, outcome, trigger) == expected


@pytest.mark.parametrize(
    ("review", "exit_code", "words"),
    [
        (None, 1, "Regressed: qa-suite"),
        ("needs_review", EXIT_AWAITING_REVIEW, "Needs review: approve or reject it"),
        ("approved", 0, "Approved by ana: known drop."),
        ("rejected", 1, "Rejected by ana: known drop."),
    ],
    ids=["none", "held", "approved", "rejected"],
)
def test_the_review_decides_the_exit_code(review: str | None, exit_code: int, words: str) -> None:
    decided = {"reviewed_by": "ana", "review_reason": "known drop"} if review else {}
    report = held(review, **decided)
    assert report.exit_code == exit_code and words in report.summary
    assert report.awaiting_review == (review == "needs_review")
    assert GateReport.model_validate_json(render_json(report)) == report
    if review:
        assert f"**Review**: {words.split(':')[0]}" in render_markdown(report)
        assert f'name="review" value="{review}"' in render_junit(report)


def test_a_report_refuses_another_verdict_as_its_review() -> None:
    other = REGRESSED.verdict.model_copy(update={"id": REGRESSED.verdict.id + 1})
    with pytest.raises(ValueError, match="is not verdict"):
        held("needs_review").reviewed(other)


class ReviewingDaemon(FakeDaemon):
    """Answers a held report; the verdict is decided after ``pending`` polls (never when
    None)."""

    def __init__(self, pending: int | None) -> None:
        super().__init__(report=json.loads(render_json(held("needs_review"))))
        self.pending = pending
        self.verdict_polls = 0

    def answer(self, route: str) -> httpx.Response:
        if route != f"GET /v1/verdicts/{REGRESSED.verdict.id}":
            return super().answer(route)
        self.verdict_polls += 1
        decided = self.pending is not None and self.verdict_polls > self.pending
        update = {"review": "approved", "reviewed_by": "ana"} if decided else {}
        body = held("needs_review").verdict.model_copy(update=update)
        return httpx.Response(200, content=body.model_dump_json())


async def wait_remote(daemon: ReviewingDaemon, wait: float | None, time: FakeTime) -> Any:
    from monitor.gate import remote_report

    announced: list[GateReport] = []
    result = await remote_report(
        URL,
        TOKEN,
        "qa-suite",
        "model-x",
        baseline=None,
        sample=None,
        timeout=60,
        transport=httpx.MockTransport(daemon),
        clock=time.clock,
        sleep=time.sleep,
        review_wait=wait,
        announce=announced.append,
    )
    return result, announced


async def test_remote_wait_returns_the_decided_report() -> None:
    daemon, time = ReviewingDaemon(pending=3), FakeTime()
    report, announced = await wait_remote(daemon, timedelta(minutes=30).total_seconds(), time)
    assert isinstance(report, GateReport) and report.exit_code == 0
    assert report.verdict.review == "approved" and report.run.id == NATIVE
    assert [r.verdict.review for r in announced] == ["needs_review"]
    assert daemon.verdict_polls == 4


async def test_remote_wait_gives_up_after_the_wait_and_without_it_does_not_poll() -> None:
    daemon, time = ReviewingDaemon(pending=None), FakeTime()
    report, _ = await wait_remote(daemon, 120.0, time)
    assert isinstance(report, GateReport) and report.exit_code == EXIT_AWAITING_REVIEW
    # Pauses grow and the last one ends exactly at the wait's end (after the run's polls).
    assert 110 <= time.now <= 125 and daemon.verdict_polls >= 3
    unpolled = ReviewingDaemon(pending=0)
    report, announced = await wait_remote(unpolled, None, FakeTime())
    assert report.exit_code == EXIT_AWAITING_REVIEW and unpolled.verdict_polls == 0
    assert announced == []
