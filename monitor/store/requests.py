"""Requests of the compatible runs API: one ``run_requests`` row and its queued runs.

A request is stored with every run it asks for in ONE transaction, so an answer of
``202 queued`` always names runs that exist, and a refused request leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from monitor.records import RunRequest, RunStatus
from monitor.store import reads, writes
from monitor.store.tables import run_requests

__all__ = ["MAX_RUNS", "QueuedRun", "check_request", "create_request", "get_request"]

MAX_RUNS = 100
"""Runs one request may ask for: a request is read back whole, with all its runs."""


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run a request asks for: the model name it is stored under and its config hash."""

    model: str
    config_hash: str


def check_request(request_id: str, runs: Sequence[QueuedRun]) -> None:
    """Refuse what the store could not keep apart: a numeric id (native run ids are
    numbers), no runs, too many, or one model twice (whose result would be whose?)."""
    if not request_id or request_id.isdigit():
        raise ValueError(f"a request id must be a non-numeric string, got: {request_id!r}")
    if not 1 <= len(runs) <= MAX_RUNS:
        raise ValueError(f"a request asks for 1 to {MAX_RUNS} runs, got: {len(runs)}")
    names = [run.model for run in runs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"model {twice[0]!r} is asked for twice")


def create_request(
    connection: Connection,
    *,
    request_id: str,
    suite: str,
    models: Sequence[dict[str, Any]],
    sample: int | None,
    baseline: str | None,
    requested_by: str,
    at: datetime,
    runs: Sequence[QueuedRun],
    tier: str = "",
) -> list[int]:
    """Insert the request and one ``queued`` run per entry of ``runs`` (trigger ``api``);
    return the run ids in the order of ``runs``. The dataset fingerprint is recorded
    when each run starts."""
    connection.execute(
        insert(run_requests).values(
            id=request_id,
            suite=suite,
            models=[dict(model) for model in models],
            sample=sample,
            baseline=baseline,
            requested_by=requested_by,
            created_at=at,
        )
    )
    return [
        writes.create_run(
            connection,
            suite=suite,
            model=run.model,
            trigger="api",
            dataset_sha256="",
            config_hash=run.config_hash,
            at=at,
            status=RunStatus.QUEUED,
            request_id=request_id,
            tier=tier,
        )
        for run in runs
    ]


def get_request(connection: Connection, request_id: str) -> RunRequest | None:
    """The request with its runs (and their metrics) in id order, or ``None``."""
    row = connection.execute(
        select(run_requests).where(run_requests.c.id == request_id)
    ).one_or_none()
    if row is None:
        return None
    runs = reads.list_runs(connection, request_id=request_id, limit=MAX_RUNS)
    return RunRequest(
        id=row.id,
        suite=row.suite,
        models=tuple(dict(model) for model in row.models),
        sample=row.sample,
        baseline=row.baseline,
        requested_by=row.requested_by,
        created_at=row.created_at,
        runs=tuple(sorted(runs, key=lambda run: run.id)),
    )
