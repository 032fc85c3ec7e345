"""The latest state of each suite x model, kept up to date at write time (``run_rollups``).

``/metrics`` used to group every stored run on each scrape: hundreds of milliseconds at
100,000 runs, growing with the history, and its counters would have gone down when
retention deletes runs. Instead every write that changes a pair's numbers folds the change
into the pair's one row, in the same transaction: a run created (the pair exists, and is
active now), runs finished (counts, sums, the run that finished last, the newest succeeded
run) and a verdict of a scheduled run stored. A scrape then reads one row per pair plus the
queued and running runs (few, by the status index).

Two replicas finishing runs of one pair at once serialise on the rollup row (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite has one writer), so no increment is lost. ``rebuild``
recomputes every row from the runs (migration 0013, and ``bench/`` seeding runs with bare
inserts), with the same fold the writes use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, inspect, select, update

from monitor.records import RunStatus, RunSummary
from monitor.store.engine import dialect_insert
from monitor.store.tables import run_judges, run_rollups, runs, verdicts

__all__ = ["note_created", "note_finished", "note_verdict", "rebuild", "summaries"]

ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
COUNTED = (RunStatus.SUCCEEDED.value, RunStatus.FAILED.value, RunStatus.INTERRUPTED.value)

_RUN_COLUMNS = (
    runs.c.id,
    runs.c.suite,
    runs.c.model,
    runs.c.status,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.n_cases,
    runs.c.n_errors,
    runs.c.prompt_tokens,
    runs.c.completion_tokens,
    runs.c.cost,
    runs.c.currency,
)
_JUDGE_COLUMNS = (
    run_judges.c.run_id,
    run_judges.c.prompt_tokens,
    run_judges.c.completion_tokens,
    run_judges.c.cost,
    run_judges.c.currency,
)


@dataclass
class Rollup:
    """One pair's row as the fold sees it. ``add`` takes finished runs in any order and
    gives the same result as grouping them all."""

    suite: str
    model: str
    updated_at: datetime
    succeeded: int = 0
    failed: int = 0
    interrupted: int = 0
    cases: int = 0
    case_errors: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: dict[str, float] = field(default_factory=dict)
    last_finished_at: datetime | None = None
    last_success_at: datetime | None = None
    last_run_id: int | None = None
    success_run_id: int | None = None
    last_duration_seconds: float | None = None
    last_cases: int | None = None
    last_case_errors: int | None = None
    last_cost: float | None = None
    last_currency: str | None = None
    verdict_id: int | None = None
    judge_prompt_tokens: int | None = None
    judge_completion_tokens: int | None = None
    judge_cost: dict[str, float] = field(default_factory=dict)

    def add(self, run: Any, judges: Sequence[Any] = ()) -> None:
        """Fold in one finished run (a row with the columns of ``_RUN_COLUMNS``) and its
        judges' usage (rows with the columns of ``_JUDGE_COLUMNS``)."""
        if run.status not in COUNTED or run.finished_at is None:
            return
        for judge in judges:
            self.judge_prompt_tokens = _plus(self.judge_prompt_tokens, judge.prompt_tokens)
            self.judge_completion_tokens = _plus(
                self.judge_completion_tokens, judge.completion_tokens
            )
            if judge.cost is not None and judge.currency is not None:
                spent = self.judge_cost.get(judge.currency, 0.0) + float(judge.cost)
                self.judge_cost[judge.currency] = spent
        setattr(self, run.status, getattr(self, run.status) + 1)
        self.cases += int(run.n_cases or 0)
        self.case_errors += int(run.n_errors or 0)
        self.prompt_tokens = _plus(self.prompt_tokens, run.prompt_tokens)
        self.completion_tokens = _plus(self.completion_tokens, run.completion_tokens)
        if run.cost is not None and run.currency is not None:
            self.cost[run.currency] = self.cost.get(run.currency, 0.0) + float(run.cost)
        self.updated_at = max(self.updated_at, run.finished_at)
        if run.status == RunStatus.SUCCEEDED.value:
            self.last_success_at = _later(self.last_success_at, run.finished_at)
            self.success_run_id = max(self.success_run_id or 0, run.id)
        if (
            self.last_finished_at is None
            or self.last_run_id is None
            or ((run.finished_at, run.id) > (self.last_finished_at, self.last_run_id))
        ):
            self._take_last(run)

    def _take_last(self, run: Any) -> None:
        started = run.started_at
        self.last_finished_at, self.last_run_id = run.finished_at, run.id
        self.last_duration_seconds = (
            None if started is None else (run.finished_at - started).total_seconds()
        )
        self.last_cases, self.last_case_errors = run.n_cases, run.n_errors
        known = run.cost is not None and run.currency is not None
        self.last_cost = run.cost if known else None
        self.last_currency = run.currency if known else None

    def values(self) -> dict[str, Any]:
        return {column.name: getattr(self, column.name) for column in run_rollups.columns}


def note_created(connection: Connection, suite: str, model: str, *, at: datetime) -> None:
    """A run of the pair was created at ``at``: the pair exists and was active then."""
    upsert = dialect_insert(connection)(run_rollups).values(
        Rollup(suite, model, updated_at=at).values()
    )
    # Two-argument max() is SQLite's GREATEST.
    later = func.max if connection.dialect.name == "sqlite" else func.greatest
    connection.execute(
        upsert.on_conflict_do_update(
            index_elements=["suite", "model"],
            set_={"updated_at": later(upsert.excluded.updated_at, run_rollups.c.updated_at)},
        )
    )


def note_finished(connection: Connection, run_ids: Sequence[int]) -> None:
    """Fold runs that just became final into their pairs' rows (in this transaction)."""
    if not run_ids:
        return
    query = select(*_RUN_COLUMNS).where(runs.c.id.in_(list(run_ids))).order_by(runs.c.id)
    by_pair: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in connection.execute(query):
        by_pair[row.suite, row.model].append(row)
    judges = _judges_of(connection, run_ids)
    for (suite, model), rows in sorted(by_pair.items()):
        rollup = _locked(connection, suite, model, at=rows[0].finished_at)
        for row in rows:
            rollup.add(row, judges.get(row.id, ()))
        _write(connection, rollup)


def _judges_of(
    connection: Connection, run_ids: Sequence[int] | None = None
) -> dict[int, list[Any]]:
    """The judges' usage rows of ``run_ids`` (of every run when None), by run."""
    query = select(*_JUDGE_COLUMNS)
    if run_ids is not None:
        query = query.where(run_judges.c.run_id.in_(list(run_ids)))
    by_run: dict[int, list[Any]] = defaultdict(list)
    for row in connection.execute(query):
        by_run[row.run_id].append(row)
    return by_run


def note_verdict(connection: Connection, verdict_id: int, run_id: int) -> None:
    """A verdict was stored: the newest of a scheduled run is its pair's latest."""
    run = connection.execute(
        select(runs.c.suite, runs.c.model, runs.c.trigger).where(runs.c.id == run_id)
    ).one_or_none()
    if run is None or run.trigger != "schedule":
        return  # a CI gate's or API run's verdict says nothing about production
    newer = (run_rollups.c.verdict_id.is_(None)) | (run_rollups.c.verdict_id < verdict_id)
    connection.execute(
        update(run_rollups)
        .where(run_rollups.c.suite == run.suite, run_rollups.c.model == run.model, newer)
        .values(verdict_id=verdict_id)
    )


def summaries(connection: Connection) -> list[RunSummary]:
    """Every pair's ``RunSummary``: its rollup row, plus its queued and running runs
    counted by the status index (bounded by the work in flight, not the history)."""
    active: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    grouped = (
        select(runs.c.suite, runs.c.model, runs.c.status, func.count())
        .where(runs.c.status.in_(ACTIVE))
        .group_by(runs.c.suite, runs.c.model, runs.c.status)
    )
    for suite, model, status, count in connection.execute(grouped):
        active[suite, model][status] = int(count)
    rows = connection.execute(
        select(run_rollups).order_by(run_rollups.c.suite, run_rollups.c.model)
    )
    return [_summary(row, active.get((row.suite, row.model), {})) for row in rows]


def rebuild(connection: Connection) -> int:
    """Recompute every pair's row from the stored runs, their judges' usage and the
    verdicts; return how many. Reads the runs once, in id order, streamed.

    Migration 0013 calls it on a schema older than this code's: it then writes only the
    columns the table has, and folds no judges (their table comes with 0016, their
    columns here with 0024)."""
    present = {column["name"] for column in inspect(connection).get_columns("run_rollups")}
    judges = _judges_of(connection) if "judge_cost" in present else {}
    rollups: dict[tuple[str, str], Rollup] = {}
    result = connection.execute(
        select(*_RUN_COLUMNS, runs.c.created_at).order_by(runs.c.id),
        execution_options={"yield_per": 10_000},
    )
    for row in result:
        pair = (row.suite, row.model)
        rollup = rollups.get(pair)
        if rollup is None:
            rollup = rollups[pair] = Rollup(*pair, updated_at=row.created_at)
        rollup.updated_at = max(rollup.updated_at, row.created_at)
        rollup.add(row, judges.get(row.id, ()))
    newest = (
        select(verdicts.c.suite, verdicts.c.model, func.max(verdicts.c.id))
        .join(runs, runs.c.id == verdicts.c.run_id)
        .where(runs.c.trigger == "schedule")
        .group_by(verdicts.c.suite, verdicts.c.model)
    )
    for suite, model, verdict_id in connection.execute(newest):
        if (suite, model) in rollups:
            rollups[suite, model].verdict_id = verdict_id
    connection.execute(delete(run_rollups))
    if rollups:
        rows = [
            {name: value for name, value in r.values().items() if name in present}
            for r in rollups.values()
        ]
        connection.execute(insert(run_rollups), rows)
    return len(rollups)


def _locked(connection: Connection, suite: str, model: str, *, at: datetime) -> Rollup:
    """The pair's row, created if missing and locked until the transaction ends."""
    upsert = dialect_insert(connection)(run_rollups).values(
        Rollup(suite, model, updated_at=at).values()
    )
    connection.execute(upsert.on_conflict_do_nothing(index_elements=["suite", "model"]))
    query = select(run_rollups).where(run_rollups.c.suite == suite, run_rollups.c.model == model)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    row = connection.execute(query).one()
    values = dict(row._mapping)
    values["cost"] = dict(values["cost"] or {})
    values["judge_cost"] = dict(values["judge_cost"] or {})
    return Rollup(**values)


def _write(connection: Connection, rollup: Rollup) -> None:
    connection.execute(
        update(run_rollups)
        .where(run_rollups.c.suite == rollup.suite, run_rollups.c.model == rollup.model)
        .values(rollup.values())
    )


def _summary(row: Any, active: dict[str, int]) -> RunSummary:
    counts = {status: int(getattr(row, status)) for status in COUNTED if getattr(row, status)}
    counts.update(active)
    return RunSummary(
        suite=row.suite,
        model=row.model,
        counts=counts,
        last_finished_at=row.last_finished_at,
        last_success_at=row.last_success_at,
        last_duration_seconds=row.last_duration_seconds,
        cases=int(row.cases),
        case_errors=int(row.case_errors),
        prompt_tokens=_int(row.prompt_tokens),
        completion_tokens=_int(row.completion_tokens),
        cost=dict(row.cost or {}),
        last_cases=row.last_cases,
        last_case_errors=row.last_case_errors,
        last_cost=row.last_cost,
        last_currency=row.last_currency,
        updated_at=row.updated_at,
        judge_prompt_tokens=_int(row.judge_prompt_tokens),
        judge_completion_tokens=_int(row.judge_completion_tokens),
        judge_cost=dict(row.judge_cost or {}),
    )


def _plus(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return int(value) if total is None else total + int(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current
