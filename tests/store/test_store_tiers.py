"""Tiers in the store and the verdict service, on SQLite and PostgreSQL: a run keeps its
tier, each tier has its own active baseline, a run is judged only against a baseline of
its own tier, and the metrics exporter's baseline scores stay those of no tier."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.store import Store
from monitor.verdicts.service import VerdictError, find_baseline, judge_run
from tests.store.conftest import T0
from tests.store.test_store_verdicts import config_for


def tier_run(store: Store, tier: str, correct: list[int], *, trigger: str = "gate") -> int:
    from monitor.records import CaseResult, MetricValue, RunStatus

    run_id = store.runs.create_run(
        suite="qa", model="prod", trigger=trigger, dataset_sha256="d" * 64,
        config_hash="c" * 64, at=T0, tier=tier,
    )  # fmt: skip
    cases = [
        CaseResult(f"case-{i:04d}", {"text": str(i)}, "yes", prediction="yes" if ok else "no",
                   scores={"accuracy": float(ok)})
        for i, ok in enumerate(correct)
    ]  # fmt: skip
    accuracy = MetricValue("accuracy", sum(correct) / len(correct), None, None, len(correct))
    store.runs.finish_run(
        run_id, status=RunStatus.SUCCEEDED, at=T0, cases=cases, metrics=[accuracy]
    )
    return run_id


def test_each_tier_has_its_own_baseline(store: Store, tmp_path: Path) -> None:
    config = config_for(tmp_path, tiers={"smoke": {"sample": 10}, "full": {}})
    plain, smoke = tier_run(store, "", [1] * 40), tier_run(store, "smoke", [1] * 10)
    store.verdicts.promote_baseline(plain, by="a", reason="", at=T0)
    promoted = store.verdicts.promote_baseline(smoke, by="b", reason="", at=T0 + timedelta(1))
    assert promoted is not None and promoted.tier == "smoke"
    run = store.runs.get_run(smoke)
    assert run is not None and run.tier == "smoke"
    active = {(b.tier, b.run_id) for b in store.verdicts.list_baselines() if b.active}
    assert active == {("", plain), ("smoke", smoke)}
    assert store.verdicts.active_baseline("qa", "prod", "smoke") == promoted
    assert store.verdicts.active_baseline("qa", "prod", "full") is None
    [entry] = store.audit.audit_entries(limit=1)
    assert entry.details["tier"] == "smoke"
    # The exporter follows scheduled runs: only the untiered baseline's scores.
    assert [s.run_id for s in store.verdicts.baseline_scores()] == [plain]

    later = store.runs.get_run(tier_run(store, "smoke", [1] * 10))
    assert later is not None
    verdict = judge_run(store, config, later, at=T0)
    assert verdict.baseline_run_id == smoke
    with pytest.raises(VerdictError, match=r"has no baseline \(tier full\)"):
        find_baseline(store, config, "qa", "prod", None, "full")
    with pytest.raises(VerdictError, match="ran no tier, this run tier 'smoke'"):
        find_baseline(store, config, "qa", "prod", plain, "smoke")
    # A candidate of a tier falls back to production's baseline of that tier.
    assert find_baseline(store, config, "qa", "cand", None, "smoke").run.id == smoke


def test_migration_0015_keeps_rows_and_downgrades_to_one_active_baseline(
    bare_store: Store,
) -> None:
    """From 0011 with a baseline, up to head and back: the old baseline is of no tier,
    tiered ones may join it, and going down leaves one active baseline per suite x
    model (the newest) and no audit log."""
    from alembic import command
    from sqlalchemy import inspect

    from monitor.store import migrate

    migrate.upgrade(bare_store.engine, "0011")
    with bare_store.engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), "head")
    old = tier_run(bare_store, "", [1] * 5)
    bare_store.verdicts.promote_baseline(old, by="a", reason="", at=T0)
    smoke = tier_run(bare_store, "smoke", [1] * 5)
    bare_store.verdicts.promote_baseline(smoke, by="a", reason="", at=T0)
    assert len([b for b in bare_store.verdicts.list_baselines() if b.active]) == 2
    with bare_store.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # as migrate.upgrade does: SQLite rebuilds the runs table
            migrate._foreign_keys(connection, on=False)
        with connection.begin():
            command.downgrade(migrate.alembic_config(connection), "0011")
        if sqlite:
            migrate._foreign_keys(connection, on=True)
    inspector = inspect(bare_store.engine)
    assert "audit_log" not in inspector.get_table_names()
    assert "tier" not in {c["name"] for c in inspector.get_columns("runs")}
    with bare_store.engine.connect() as connection:
        from sqlalchemy import text

        active = connection.execute(text("SELECT run_id FROM baselines WHERE active")).all()
    assert [row.run_id for row in active] == [smoke]
    bare_store.upgrade()
    assert bare_store.verdicts.active_baseline("qa", "prod") is not None
    assert bare_store.verdicts.active_baseline("qa", "prod", "smoke") is None
