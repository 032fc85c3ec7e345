"""``monitor review approve|reject RUN_ID --reason ...`` and ``monitor review list``: decide
a verdict its suite holds for review, and see which wait (docs/verdicts.md).

The reviewer is ``--by`` or $USER; the decision is final and goes into the audit log. A
``monitor gate --wait-review`` waiting on the verdict then exits 0 (approved) or 1
(rejected).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import EXIT_USAGE, config_option, fail, load, ready_store
from monitor.clock import utc_now
from monitor.records import Review, Verdict


@click.group()
def review() -> None:
    """Approve or reject verdicts that wait for review."""


_reason = click.option("--reason", required=True, help="Why (kept in the audit log).")
_by = click.option("--by", "reviewer", default=None, help="Who (default: $USER).")


@review.command("approve")
@config_option
@click.argument("run_id", type=click.IntRange(min=1))
@_reason
@_by
def approve(config_path: Path, run_id: int, reason: str, reviewer: str | None) -> None:
    """Approve the verdict of RUN_ID that waits for review: the gate passes."""
    _decide(config_path, run_id, approve=True, reason=reason, reviewer=reviewer)


@review.command("reject")
@config_option
@click.argument("run_id", type=click.IntRange(min=1))
@_reason
@_by
def reject(config_path: Path, run_id: int, reason: str, reviewer: str | None) -> None:
    """Reject the verdict of RUN_ID that waits for review: the gate fails."""
    _decide(config_path, run_id, approve=False, reason=reason, reviewer=reviewer)


@review.command("list")
@config_option
@click.option("--suite", help="Only this suite.")
def list_pending(config_path: Path, suite: str | None) -> None:
    """The newest verdicts that wait for review."""
    store = ready_store(load(config_path))
    try:
        found = [
            v
            for v in store.verdicts.list_verdicts(suite=suite, limit=200)
            if v.review == Review.NEEDS_REVIEW
        ]
    finally:
        store.close()
    for v in found:
        when = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"run {v.run_id}  verdict {v.id}  {v.suite}  {v.model}  {v.outcome}  {when}")


def _decide(
    config_path: Path, run_id: int, *, approve: bool, reason: str, reviewer: str | None
) -> None:
    if not reason.strip():
        fail(EXIT_USAGE, "--reason must say why")
    who = reviewer or os.environ.get("USER") or "cli"
    store = ready_store(load(config_path))
    try:
        verdict = _pending(store, run_id)
        try:
            decided = store.verdicts.review_verdict(
                verdict.id, approve=approve, by=who, reason=reason, at=utc_now()
            )
        except (LookupError, ValueError) as exc:  # decided meanwhile by someone else
            fail(EXIT_USAGE, str(exc.args[0]))
    finally:
        store.close()
    click.echo(
        f"verdict {decided.id} of run {run_id} ({decided.suite} on {decided.model},"
        f" {decided.outcome}) {decided.review} by {who}"
    )


def _pending(store: Any, run_id: int) -> Verdict:
    """The newest verdict of ``run_id`` waiting for review; exit 2 saying why there is none."""
    found: list[Verdict] = store.verdicts.list_verdicts(run_id=run_id, limit=20)
    if not found:
        if store.runs.get_run(run_id) is None:
            fail(EXIT_USAGE, f"run {run_id} not found")
        fail(EXIT_USAGE, f"run {run_id} has no verdict to review")
    waiting = [v for v in found if v.review == Review.NEEDS_REVIEW]
    if waiting:
        return waiting[0]
    decided = next((v for v in found if v.review is not None), None)
    if decided is not None:
        fail(
            EXIT_USAGE,
            f"verdict {decided.id} of run {run_id} was already {decided.review} by"
            f" {decided.reviewed_by}",
        )
    return fail(EXIT_USAGE, f"run {run_id}'s verdict needs no review ({found[0].suite} asks none)")
