"""Baselines and verdicts in the store, on SQLite and PostgreSQL: promotions keep history
with one active baseline, verdicts round-trip with their metrics and case diff, and the
service picks the right baseline or refuses with a reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, parse_config
from monitor.records import CaseResult, RunStatus
from monitor.store import Store
from monitor.verdicts.service import VerdictError, auto_promote, find_baseline, judge_run
from tests.store.conftest import T0


def config_for(tmp_path: Path, **suite: Any) -> Config:
    dataset = tmp_path / "cases.jsonl"
    dataset.write_text('{"id": "a", "input": "x", "expected": "y"}\n')
    return parse_config(
        {
            "models": [
                {"name": "prod", "adapter": "http", "url": "http://127.0.0.1:9/"},
                {
                    "name": "cand",
                    "adapter": "http",
                    "url": "http://127.0.0.1:9/",
                    "role": "candidate",
                },
            ],
            "suites": [
                {
                    "name": "qa",
                    "dataset": str(dataset),
                    "task": "classification",
                    "metrics": ["accuracy"],
                    "models": ["prod", "cand"],
                    **suite,
                }
            ],
        },
        base_dir=tmp_path,
    )


def finished_run(
    store: Store,
    correct: list[int],
    *,
    model: str = "prod",
    dataset: str = "d" * 64,
    status: RunStatus = RunStatus.SUCCEEDED,
    trigger: str = "schedule",
) -> int:
    run_id = store.runs.create_run(
        suite="qa",
        model=model,
        trigger=trigger,
        dataset_sha256=dataset,
        config_hash="c" * 64,
        at=T0,
    )
    cases = [
        CaseResult(
            f"case-{i:04d}",
            {"text": f"question {i} | with a pipe"},
            "yes",
            prediction="yes" if ok else "no",
            scores={"accuracy": float(ok)},
            latency_seconds=0.1,
        )
        for i, ok in enumerate(correct)
    ]
    store.runs.finish_run(
        run_id, status=status, at=T0 + timedelta(seconds=5), cases=cases, metrics=[]
    )
    return run_id


def test_promotions_keep_history_and_one_active_baseline(store: Store) -> None:
    first = finished_run(store, [1] * 10)
    second = finished_run(store, [1] * 10)
    store.verdicts.promote_baseline(first, by="alice", reason="initial", at=T0)
    promoted = store.verdicts.promote_baseline(
        second, by="bob", reason="new model", at=T0 + timedelta(1)
    )
    assert promoted is not None and promoted.active and promoted.dataset_sha256 == "d" * 64
    active = store.verdicts.active_baseline("qa", "prod")
    assert active is not None and active.run_id == second and active.promoted_by == "bob"
    history = store.verdicts.list_baselines(suite="qa")
    assert [(b.run_id, b.active, b.reason) for b in history] == [
        (second, True, "new model"),
        (first, False, "initial"),
    ]
    assert store.verdicts.get_baseline(history[1].id) == history[1]


def test_only_a_succeeded_run_can_be_promoted(store: Store) -> None:
    failed = finished_run(store, [1], status=RunStatus.FAILED)
    with pytest.raises(ValueError, match="only a succeeded run"):
        store.verdicts.promote_baseline(failed, by="x", reason="", at=T0)
    with pytest.raises(LookupError, match="run 999 not found"):
        store.verdicts.promote_baseline(999, by="x", reason="", at=T0)
    assert store.verdicts.list_baselines() == []


def test_auto_promotes_the_first_scheduled_success_only(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path, baseline="auto")
    gate_run = finished_run(store, [1] * 5, trigger="gate")
    assert not auto_promote(store, config, store.runs.get_run(gate_run), at=T0)  # type: ignore[arg-type]
    first = finished_run(store, [1] * 5)
    second = finished_run(store, [1] * 5)
    assert auto_promote(store, config, store.runs.get_run(first), at=T0)  # type: ignore[arg-type]
    assert not auto_promote(store, config, store.runs.get_run(second), at=T0)  # type: ignore[arg-type]
    baseline = store.verdicts.active_baseline("qa", "prod")
    assert baseline is not None and baseline.run_id == first and baseline.promoted_by == "auto"
    manual = config_for(tmp_path)
    store2_run = finished_run(store, [1] * 5, model="cand")
    assert not auto_promote(store, manual, store.runs.get_run(store2_run), at=T0)  # type: ignore[arg-type]


def test_a_verdict_is_stored_and_read_back_whole(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    base = finished_run(store, [1] * 200)
    store.verdicts.promote_baseline(base, by="alice", reason="", at=T0)
    new = finished_run(store, [1] * 170 + [0] * 30)
    run = store.runs.get_run(new)
    assert run is not None
    verdict = judge_run(store, config, run, at=T0 + timedelta(minutes=1))
    assert verdict.outcome == "regressed" and verdict.baseline_run_id == base
    assert not verdict.dataset_changed
    (row,) = verdict.metrics
    assert (row.metric, row.degraded, row.improved, row.n) == ("accuracy", 30, 0, 200)
    assert row.bound is not None and row.bound < 0  # read back below with the rest
    assert (row.bound_side, row.bound_level) == ("upper", 0.95)
    assert len(verdict.changes) == 10 and verdict.changes[0].input["text"].startswith("question")
    assert store.verdicts.list_verdicts(suite="qa", model="prod") == [verdict]
    assert store.verdicts.latest_verdicts() == [verdict]
    assert store.verdicts.get_verdict(verdict.id) == verdict
    # Judging again against the same baseline replaces, never duplicates.
    again = judge_run(store, config, run, at=T0 + timedelta(minutes=2))
    assert store.verdicts.list_verdicts(run_id=new) == [again]


def test_a_changed_dataset_is_refused_unless_allowed(store: Store, tmp_path: Path) -> None:
    base = finished_run(store, [1] * 30)
    store.verdicts.promote_baseline(base, by="alice", reason="", at=T0)
    run = store.runs.get_run(finished_run(store, [1] * 30, dataset="e" * 64))
    assert run is not None
    with pytest.raises(VerdictError, match="dataset of suite qa changed"):
        judge_run(store, config_for(tmp_path), run, at=T0)
    assert store.verdicts.list_verdicts() == []
    allowed = judge_run(store, config_for(tmp_path), run, at=T0, allow_dataset_change=True)
    assert allowed.dataset_changed
    by_config = judge_run(store, config_for(tmp_path, allow_dataset_change=True), run, at=T0)
    assert by_config.dataset_changed


def test_which_baseline_a_run_is_judged_against(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    with pytest.raises(VerdictError, match="has no baseline: promote a run"):
        find_baseline(store, config, "qa", "prod")
    with pytest.raises(VerdictError, match="no production model of qa"):
        find_baseline(store, config, "qa", "cand")
    prod_base = finished_run(store, [1] * 10)
    store.verdicts.promote_baseline(prod_base, by="alice", reason="", at=T0)
    # A candidate without its own baseline is judged against production's.
    assert find_baseline(store, config, "qa", "cand").run.id == prod_base
    cand_base = finished_run(store, [1] * 10, model="cand")
    store.verdicts.promote_baseline(cand_base, by="alice", reason="", at=T0)
    assert find_baseline(store, config, "qa", "cand").run.id == cand_base
    assert find_baseline(store, config, "qa", "cand", "production").run.id == prod_base
    assert find_baseline(store, config, "qa", "cand", str(cand_base)).run.id == cand_base
    with pytest.raises(VerdictError, match="baseline run 999 not found"):
        find_baseline(store, config, "qa", "prod", 999)
    failed = finished_run(store, [1], status=RunStatus.FAILED)
    with pytest.raises(VerdictError, match="only a succeeded run compares"):
        find_baseline(store, config, "qa", "prod", failed)
    with pytest.raises(VerdictError, match="a run id or 'production'"):
        find_baseline(store, config, "qa", "prod", "latest")


def test_a_run_is_not_judged_against_itself(store: Store, tmp_path: Path) -> None:
    base = finished_run(store, [1] * 10)
    store.verdicts.promote_baseline(base, by="alice", reason="", at=T0)
    run = store.runs.get_run(base)
    assert run is not None
    with pytest.raises(VerdictError, match="is itself the baseline"):
        judge_run(store, config_for(tmp_path), run, at=T0)


def test_only_scheduled_runs_verdicts_are_the_latest(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path)
    base = finished_run(store, [1] * 50)
    store.verdicts.promote_baseline(base, by="alice", reason="", at=T0)
    scheduled = store.runs.get_run(finished_run(store, [1] * 50))
    gated = store.runs.get_run(finished_run(store, [0] * 50, trigger="gate"))
    assert scheduled is not None and gated is not None
    kept = judge_run(store, config, scheduled, at=T0)
    judge_run(store, config, gated, at=T0 + timedelta(minutes=1))
    assert [v.id for v in store.verdicts.latest_verdicts()] == [kept.id]
    assert kept.outcome == "pass"
