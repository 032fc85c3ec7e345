"""Approval gates and the audit log in the store, on SQLite and PostgreSQL: a verdict held
for review is decided once (a second decision is refused, saying by whom), each review,
promotion and silence is logged with who, when and why in the change's own transaction,
and the database itself refuses to change or delete a log entry."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from monitor.records import Review
from monitor.store import Store
from monitor.verdicts.service import judge_run
from tests.servers import deadline
from tests.store.conftest import T0
from tests.store.test_store_verdicts import config_for, finished_run


def test_a_held_verdict_is_decided_once_and_logged(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path, review="on-regression")
    base = finished_run(store, [1] * 60)
    store.verdicts.promote_baseline(base, by="alice", reason="v1", at=T0)
    worse = store.runs.get_run(finished_run(store, [1] * 30 + [0] * 30, trigger="gate"))
    assert worse is not None
    verdict = judge_run(store, config, worse, at=T0 + timedelta(minutes=1))
    assert verdict.outcome == "regressed" and verdict.review == Review.NEEDS_REVIEW
    assert verdict.reviewed_by is None

    at = T0 + timedelta(minutes=2)
    decided = store.verdicts.review_verdict(
        verdict.id, approve=True, by="bob", reason="known", at=at
    )
    assert (decided.review, decided.reviewed_by, decided.review_reason) == (
        Review.APPROVED,
        "bob",
        "known",
    )
    assert decided.reviewed_at == at and decided.outcome == "regressed"
    assert store.verdicts.get_verdict(verdict.id) == decided

    with pytest.raises(ValueError, match="already approved by bob"):
        store.verdicts.review_verdict(verdict.id, approve=False, by="carol", reason="no", at=at)
    with pytest.raises(LookupError, match="verdict 999 not found"):
        store.verdicts.review_verdict(999, approve=True, by="bob", reason="x", at=at)
    # Judging the same two runs again keeps the decision.
    again = judge_run(store, config, worse, at=T0 + timedelta(minutes=3))
    assert (again.review, again.reviewed_by) == (Review.APPROVED, "bob")

    entries = store.audit.audit_entries()
    assert [(e.action, e.actor, e.target) for e in entries] == [
        ("review.approved", "bob", f"verdict {verdict.id}"),
        ("baseline.promoted", "alice", f"run {base}"),
    ]
    review, promotion = entries
    assert review.at == at and review.reason == "known"
    assert review.details == {
        "verdict_id": verdict.id,
        "run_id": worse.id,
        "baseline_run_id": base,
        "suite": "qa",
        "model": "prod",
        "outcome": "regressed",
    }
    assert promotion.at == T0 and promotion.details["run_id"] == base


@pytest.mark.parametrize(
    ("policy", "trigger", "correct", "held"),
    [
        ("never", "gate", 30, False),
        ("on-regression", "gate", 60, False),
        ("on-regression", "schedule", 30, False),
        ("always", "api", 60, True),
        ("always", "schedule", 60, False),
    ],
    ids=["never", "passing", "scheduled", "always", "always-scheduled"],
)
def test_which_verdicts_are_held(
    store: Store, tmp_path: Path, policy: str, trigger: str, correct: int, held: bool
) -> None:
    config = config_for(tmp_path, review=policy)
    store.verdicts.promote_baseline(finished_run(store, [1] * 60), by="a", reason="", at=T0)
    run = store.runs.get_run(
        finished_run(store, [1] * correct + [0] * (60 - correct), trigger=trigger)
    )
    assert run is not None
    verdict = judge_run(store, config, run, at=T0)
    assert verdict.review == (Review.NEEDS_REVIEW if held else None)
    if not held:
        with pytest.raises(ValueError, match="needs no review"):
            store.verdicts.review_verdict(verdict.id, approve=True, by="b", reason="r", at=T0)


def test_silences_and_auto_promotions_are_logged_and_paged(store: Store) -> None:
    silence = store.alerts.add_silence(
        matchers={"suite": "qa"},
        starts_at=T0,
        ends_at=T0 + timedelta(hours=2),
        created_by="oncall",
        comment="maintenance",
    )
    for minute in range(1, 4):
        run = finished_run(store, [1] * 5)
        store.verdicts.promote_baseline(
            run, by="auto", reason="", at=T0 + timedelta(minutes=minute)
        )
    (logged,) = store.audit.audit_entries(action="alert.silenced")
    assert (logged.actor, logged.target, logged.reason) == (
        "oncall",
        f"silence {silence}",
        "maintenance",
    )
    assert logged.details["matchers"] == {"suite": "qa"}
    newest = store.audit.audit_entries(limit=2)
    older = store.audit.audit_entries(limit=2, before_id=newest[-1].id)
    ids = [e.id for e in newest + older]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    oldest_first = store.audit.audit_entries(after_id=0)
    assert [e.id for e in oldest_first] == sorted(ids)
    window = store.audit.audit_entries(
        since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=3)
    )
    assert [e.at for e in window] == [T0 + timedelta(minutes=2)]
    with pytest.raises(ValueError, match="unknown audit action"):
        store.audit.audit_entries(action="review.maybe")


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_the_log(store: Store, statement: str) -> None:
    store.verdicts.promote_baseline(finished_run(store, [1]), by="alice", reason="v1", at=T0)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
        connection.execute(text(statement))
    assert [e.actor for e in store.audit.audit_entries()] == ["alice"]


def test_racing_reviewers_get_one_decision(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path, review="always")
    store.verdicts.promote_baseline(finished_run(store, [1] * 20), by="alice", reason="", at=T0)
    run = store.runs.get_run(finished_run(store, [1] * 20, trigger="gate"))
    assert run is not None
    verdict = judge_run(store, config, run, at=T0)
    start = threading.Barrier(4)

    def decide(who: str) -> str:
        start.wait(timeout=deadline(30))
        try:
            store.verdicts.review_verdict(verdict.id, approve=True, by=who, reason="ok", at=T0)
        except ValueError as exc:
            return str(exc)
        return "decided"

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(decide, ["a", "b", "c", "d"]))
    assert answers.count("decided") == 1, answers
    decided = store.verdicts.get_verdict(verdict.id)
    assert decided is not None and decided.reviewed_by in "abcd"
    assert all(f"already approved by {decided.reviewed_by}" in a for a in answers if a != "decided")
    assert len(store.audit.audit_entries(action="review.approved")) == 1
