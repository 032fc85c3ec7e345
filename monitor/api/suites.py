"""Suites: the leaderboard of a suite across its models."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from monitor.config import SuiteConfig
from monitor.records import LatestScore
from monitor.scoring import build_metric
from monitor.store.parts import HasRuns

router = APIRouter(prefix="/v1/suites", tags=["suites"])


class ScoreOut(BaseModel):
    name: str
    value: float
    lower: float | None
    upper: float | None


class LeaderboardEntry(BaseModel):
    """A model's latest succeeded run. ``rank`` is ``null`` when that run has no value
    of the ranking metric (skipped, or the suite's metrics changed since)."""

    rank: int | None
    model: str
    run_id: int
    finished_at: datetime
    value: float | None
    metrics: list[ScoreOut]


class Leaderboard(BaseModel):
    suite: str
    metric: str
    higher_is_better: bool
    entries: list[LeaderboardEntry]


@router.get("/{suite}/leaderboard", responses={404: {"description": "No such suite"}})
async def leaderboard(request: Request, suite: str) -> Leaderboard:
    """Every model's latest succeeded run of the suite, best first by the suite's first
    metric (lowest first for error metrics such as ``mae``, ``rmse``, ``mape`` and
    ``log-loss``). Models whose latest runs failed keep their last good scores."""
    config: SuiteConfig | None = request.app.state.suites.get(suite)
    if config is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"suite {suite!r} not found")
    store: HasRuns = request.app.state.store
    scores = await anyio.to_thread.run_sync(lambda: store.runs.latest_scores(suite=suite))
    metric = build_metric(config.metrics[0])
    return ranked(suite, metric.label, type(metric).higher_is_better, scores)


def ranked(
    suite: str, metric: str, higher_is_better: bool, scores: list[LatestScore]
) -> Leaderboard:
    """The leaderboard of ``scores`` (one suite's latest scores) by ``metric``; ties
    are broken by model name, so the order is stable."""
    by_model: dict[str, list[LatestScore]] = defaultdict(list)
    for score in scores:
        by_model[score.model].append(score)
    entries = [_entry(model, rows, metric) for model, rows in by_model.items()]
    sign = -1.0 if higher_is_better else 1.0
    entries.sort(key=lambda e: (e.value is None, sign * (e.value or 0.0), e.model))
    for position, entry in enumerate(e for e in entries if e.value is not None):
        entry.rank = position + 1
    return Leaderboard(
        suite=suite, metric=metric, higher_is_better=higher_is_better, entries=entries
    )


def _entry(model: str, rows: list[LatestScore], metric: str) -> LeaderboardEntry:
    values = {row.metric: row.value for row in rows}
    return LeaderboardEntry(
        rank=None,
        model=model,
        run_id=rows[0].run_id,
        finished_at=rows[0].finished_at,
        value=values.get(metric),
        metrics=[
            ScoreOut(name=row.metric, value=row.value, lower=row.lower, upper=row.upper)
            for row in rows
        ],
    )
