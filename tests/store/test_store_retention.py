"""Store contract for rollups and retention, on SQLite and PostgreSQL: the per-pair rollup
says what the runs say; retention deletes old rows in bounded batches, never what is still
referenced or undelivered, and no exported counter goes down."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, delete, func, insert, select

from monitor.alerts import AlertState, Phase, Transition
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.records import NewDriftReport, RunOperations, RunStatus, RunSummary
from monitor.store import Store, migrate
from monitor.store.retention_store import ExpiringKind
from monitor.store.tables import case_results, run_rollups, runs
from tests.store.conftest import T0, MakeCases, StartRun

DAY = timedelta(days=1)
LATER = T0 + 100 * DAY
"""The moment retention runs: everything made around T0 is 100 days old."""


def expire_all(store: Store, kind: ExpiringKind, *, before: datetime, limit: int = 500) -> int:
    total = 0
    while count := store.retention.expire(kind, before=before, limit=limit, max_cases=1000):
        total += count
    return total


def ops(prompt: int | None, cost: float | None) -> RunOperations:
    return RunOperations(
        latency_p50=0.1,
        latency_p90=0.2,
        latency_p95=0.3,
        latency_p99=0.4,
        error_rate=0.0,
        throughput=5.0,
        prompt_tokens=prompt,
        completion_tokens=None if prompt is None else prompt // 10,
        cost=cost,
        currency=None if cost is None else "USD",
    )


def summary(store: Store, suite: str = "qa", model: str = "prod") -> RunSummary:
    (found,) = [s for s in store.runs.run_summaries() if (s.suite, s.model) == (suite, model)]
    return found


def without_time(summaries: list[RunSummary]) -> list[RunSummary]:
    return [replace(s, updated_at=None) for s in summaries]


def test_rollup_counts_every_transition_to_final(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    first = start_run(at=T0)
    store.runs.finish_run(
        first,
        status=RunStatus.SUCCEEDED,
        at=T0 + timedelta(seconds=30),
        cases=make_cases(3, errors=1),
        operations=ops(100, 0.5),
    )
    second = start_run(at=T0 + DAY)
    store.runs.finish_run(
        second,
        status=RunStatus.FAILED,
        at=T0 + DAY + timedelta(seconds=5),
        error="boom",
        cases=make_cases(2),
        operations=ops(40, None),
    )
    queued = store.runs.create_run(
        suite="qa",
        model="prod",
        trigger="api",
        dataset_sha256="",
        config_hash="c",
        at=T0 + 2 * DAY,
        status=RunStatus.QUEUED,
    )
    store.runs.interrupt_running(reason="cancelled", at=T0 + 2 * DAY, run_ids=[queued])
    start_run(at=T0 + 3 * DAY)  # abandoned: swept below
    store.runs.interrupt_stale(before=T0 + 4 * DAY, reason="crashed", at=T0 + 4 * DAY)
    start_run(at=T0 + 5 * DAY)  # still running

    got = summary(store)

    assert got.counts == {"succeeded": 1, "failed": 1, "interrupted": 2, "running": 1}
    assert (got.cases, got.case_errors) == (5, 1)
    assert (got.prompt_tokens, got.completion_tokens) == (140, 14)
    assert got.cost == {"USD": 0.5}
    assert got.last_success_at == T0 + timedelta(seconds=30)
    assert got.last_finished_at == T0 + 4 * DAY
    assert got.last_duration_seconds == DAY.total_seconds()  # the swept run, started at 3 days
    assert (got.last_cases, got.last_cost) == (0, None)
    assert got.updated_at == T0 + 5 * DAY
    assert [s.run_id for s in store.runs.latest_scores()] == []  # the success had no metrics


def test_rebuilt_rollups_equal_the_incremental_ones(
    store: Store, add_run: StartRun, start_run: StartRun
) -> None:
    for day in range(6):
        status = [RunStatus.SUCCEEDED, RunStatus.FAILED][day % 2]
        add_run("qa", f"m{day % 3}", status=status, metrics={"f1": day / 10}, at=T0 + day * DAY)
    start_run("qa", "m9", at=T0)
    incremental = without_time(store.runs.run_summaries())
    scores = store.runs.latest_scores()
    with store.engine.begin() as connection:
        connection.execute(delete(run_rollups))

    assert store.retention.rebuild_rollups() == 4

    assert without_time(store.runs.run_summaries()) == incremental
    assert store.runs.latest_scores() == scores
    assert {(s.model, s.value) for s in scores} == {("m0", 0.0), ("m1", 0.4), ("m2", 0.2)}


def test_old_runs_go_with_their_cases_and_the_counters_stay(
    store: Store, start_run: StartRun, make_cases: MakeCases
) -> None:
    ids = []
    for day in range(5):
        run_id = start_run(at=T0 + day * DAY)
        store.runs.finish_run(
            run_id, status=RunStatus.SUCCEEDED, at=T0 + day * DAY, cases=make_cases(4)
        )
        ids.append(run_id)
    before = store.runs.run_summaries()

    deleted = expire_all(store, "runs", before=T0 + 3 * DAY)

    assert deleted == 3 * (1 + 4)  # three runs and their cases
    assert [r.id for r in store.runs.list_runs()] == ids[:2:-1]
    with store.engine.connect() as connection:
        left = connection.scalar(select(func.count()).select_from(case_results))
    assert left == 2 * 4
    assert without_time(store.runs.run_summaries()) == without_time(before)
    assert summary(store).counts == {"succeeded": 5}


def test_referenced_and_unfinished_runs_are_kept(store: Store, add_run: StartRun) -> None:
    baseline = add_run(metrics={"f1": 0.8}, at=T0)
    old_baseline = add_run(metrics={"f1": 0.7}, at=T0 + timedelta(hours=1))
    store.verdicts.promote_baseline(old_baseline, by="ci", reason="first", at=T0)
    store.verdicts.promote_baseline(baseline, by="ci", reason="better", at=T0)
    judged = add_run(metrics={"f1": 0.8}, at=T0 + timedelta(hours=2))
    store.verdicts.add_verdict(
        run_id=judged,
        baseline_run_id=baseline,
        suite="qa",
        model="prod",
        outcome="pass",
        reason="same",
        at=T0 + 60 * DAY,  # a young verdict keeps both of its runs
        dataset_changed=False,
        metrics=[],
        changes=[],
    )
    alerted = add_run(status=RunStatus.FAILED, at=T0 + timedelta(hours=3))
    firing = AlertState(
        fingerprint="f1",
        rule="failing",
        labels={"alertname": "failing"},
        phase=Phase.FIRING,
        count=1,
        active_since=T0,
        fired_at=T0,
        resolved_at=None,
        notified_at=None,
        updated_at=T0,
        summary="run failed",
        value=None,
        threshold=None,
        details={},
        links={"run": f"/v1/runs/{alerted}"},
    )
    store.alerts.apply_alert_transitions([Transition(firing, Phase.INACTIVE, "firing")], [])
    plain = add_run(status=RunStatus.FAILED, at=T0 + timedelta(hours=4))
    newest = add_run(status=RunStatus.FAILED, at=T0 + timedelta(hours=5))
    running = store.runs.create_run(
        suite="qa", model="prod", trigger="schedule", dataset_sha256="d", config_hash="c", at=T0
    )
    last_success = add_run("qa", "other", metrics={"f1": 0.5}, at=T0)
    last_finished = add_run("qa", "other", status=RunStatus.FAILED, at=T0 + DAY)

    expire_all(store, "verdicts", before=LATER - 90 * DAY)
    expire_all(store, "runs", before=LATER)

    kept = {r.id for r in store.runs.list_runs(limit=100)}
    assert plain not in kept  # the only one nobody needs
    assert kept == {
        baseline,  # the active baseline
        old_baseline,  # an earlier promotion
        judged,  # judged by a kept verdict
        alerted,  # linked from a firing alert
        running,  # not finished
        newest,  # its pair's latest finished run
        last_success,  # its pair's latest succeeded run
        last_finished,
    }
    assert store.verdicts.active_baseline("qa", "prod") is not None
    assert [s.value for s in store.runs.latest_scores(suite="qa") if s.model == "other"] == [0.5]


def test_batches_are_bounded(store: Store, start_run: StartRun, make_cases: MakeCases) -> None:
    big = start_run(at=T0)
    store.runs.finish_run(big, status=RunStatus.FAILED, at=T0, cases=make_cases(25))
    small = [start_run(at=T0 + timedelta(minutes=m)) for m in range(1, 4)]
    for run_id in small:
        store.runs.finish_run(run_id, status=RunStatus.FAILED, at=T0 + timedelta(minutes=5))
    latest = start_run(at=T0 + DAY)  # the pair's latest finished run: kept
    store.runs.finish_run(latest, status=RunStatus.FAILED, at=T0 + DAY)

    batches = []
    while count := store.retention.expire("runs", before=T0 + timedelta(hours=1), max_cases=10):
        batches.append(count)

    assert batches == [10, 10, 5 + 1, 3]  # the big run's cases ten at a time, then the rest
    assert store.retention.expire("runs", before=LATER, limit=1) == 0  # the pair's latest is kept


def test_old_verdicts_go_but_each_pairs_newest_stays(store: Store, add_run: StartRun) -> None:
    baseline = add_run(metrics={"f1": 0.8}, at=T0)
    store.verdicts.promote_baseline(baseline, by="ci", reason="first", at=T0)
    verdict_ids = []
    for day in range(4):
        run_id = add_run(metrics={"f1": 0.8}, at=T0 + day * DAY)
        verdict_ids.append(
            store.verdicts.add_verdict(
                run_id=run_id,
                baseline_run_id=baseline,
                suite="qa",
                model="prod",
                outcome="pass",
                reason="same",
                at=T0 + day * DAY,
                dataset_changed=False,
                metrics=[],
                changes=[],
            )
        )

    assert store.retention.expire("verdicts", before=LATER, limit=2) == 2
    assert store.retention.expire("verdicts", before=LATER, limit=2) == 1
    assert store.retention.expire("verdicts", before=LATER, limit=2) == 0

    assert [v.id for v in store.verdicts.list_verdicts()] == [verdict_ids[-1]]
    assert [v.id for v in store.verdicts.latest_verdicts()] == [verdict_ids[-1]]


def report(stream: str, key: str, at: datetime, status: str = "ok") -> NewDriftReport:
    return NewDriftReport(
        stream=stream,
        window_key=key,
        window_start=at - DAY,
        window_end=at,
        created_at=at,
        status=status,
        n_rows=10,
        drift_share=0.0,
        dataset_drifted=False,
        columns=(),
        html="<p>report</p>",
    )


def test_old_drift_reports_go_but_each_streams_newest_stays(store: Store) -> None:
    ok = [
        store.streams.add_drift_report(report("clicks", f"time:{d}", T0 + d * DAY))
        for d in range(3)
    ]
    newest_empty = store.streams.add_drift_report(
        report("clicks", "time:9", T0 + 9 * DAY, "no_data")
    )
    only = store.streams.add_drift_report(report("views", "time:0", T0))

    assert expire_all(store, "drift_reports", before=LATER) == 2

    assert {r.id for r in store.streams.list_drift_reports("clicks")} == {newest_empty, ok[-1]}
    assert [r.id for r in store.streams.latest_drift_reports() if r.stream == "views"] == [only]
    assert [r.window_key for r in store.streams.latest_drift_reports() if r.stream == "clicks"] == [
        "time:2"
    ]


def note(mid: str, status: OutboxStatus, *, sequence: int, attempts: int = 1) -> OutboxMessage:
    return OutboxMessage(
        id=mid,
        sink="hook",
        fingerprint="f1",
        event="firing",
        payload={"id": mid},
        status=status,
        attempts=attempts,
        created_at=T0 + timedelta(minutes=sequence),
        next_attempt_at=T0,
        sequence=sequence,
    )


def test_outbox_keeps_undelivered_and_newest_rows_and_counters(store: Store) -> None:
    store.alerts.enqueue_notifications(
        [
            note("delivered-1", OutboxStatus.DELIVERED, sequence=1, attempts=3),
            note("superseded", OutboxStatus.SUPERSEDED, sequence=2, attempts=0),
            note("dead", OutboxStatus.DEAD, sequence=3, attempts=5),
            note("discarded", OutboxStatus.DISCARDED, sequence=4, attempts=2),
            note("pending", OutboxStatus.PENDING, sequence=5, attempts=1),
            note("delivered-6", OutboxStatus.DELIVERED, sequence=6),
        ]
    )
    before = store.alerts.outbox_stats()

    assert expire_all(store, "outbox", before=LATER) == 3

    left = {m.id for m in store.alerts.list_notifications()}
    assert left == {"dead", "pending", "delivered-6"}
    assert store.alerts.outbox_stats() == before
    assert store.alerts.notification_sequences(["f1"]) == {"f1": 6}


def test_alert_history_goes_and_the_dead_letter_count_stays(store: Store) -> None:
    store.alerts.enqueue_notifications([note("dead", OutboxStatus.DEAD, sequence=1, attempts=5)])
    store.alerts.redrive_dead_letters(at=T0, by="ops")
    firing = AlertState(
        fingerprint="f2",
        rule="r",
        labels={"alertname": "r"},
        phase=Phase.FIRING,
        count=1,
        active_since=T0,
        fired_at=T0,
        resolved_at=None,
        notified_at=None,
        updated_at=T0,
        summary="s",
        value=None,
        threshold=None,
        details={},
        links={},
    )
    store.alerts.apply_alert_transitions([Transition(firing, Phase.PENDING, "firing")], [])
    before = store.alerts.outbox_stats()
    assert len(store.alerts.alert_history()) == 2

    assert expire_all(store, "alert_history", before=LATER, limit=1) == 2

    assert store.alerts.alert_history() == []
    assert store.alerts.outbox_stats().dead_total == before.dead_total == 1


def test_expire_refuses_bad_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.retention.expire("runs", before=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        store.retention.expire("runs", before=T0, limit=0)
    with pytest.raises(ValueError, match="kind must be one of verdicts, runs"):
        store.retention.expire("baselines", before=T0)  # type: ignore[arg-type]


def test_a_finished_run_counts_once_even_when_its_rollup_row_was_missing(
    store: Store, start_run: StartRun
) -> None:
    run_id = start_run(at=T0)
    with store.engine.begin() as connection:
        connection.execute(delete(run_rollups))
        assert connection.scalar(select(func.count()).select_from(runs)) == 1

    store.runs.finish_run(run_id, status=RunStatus.SUCCEEDED, at=T0 + DAY)

    assert summary(store).counts == {"succeeded": 1}


def bare_run(connection: Connection, minute: int, status: str, **columns: object) -> int:
    """A run inserted as an older revision's code stored it: ten seconds long unless
    still running, ``minute`` minutes after T0."""
    at = T0 + timedelta(minutes=minute)
    inserted = connection.execute(
        insert(runs).values(
            suite="qa",
            model="prod",
            status=status,
            trigger="schedule",
            created_at=at,
            started_at=at,
            finished_at=None if status == "running" else at + timedelta(seconds=10),
            dataset_sha256="d",
            config_hash="c",
            **columns,
        )
    )
    return int(inserted.inserted_primary_key[0])


def test_the_migration_builds_rollups_from_the_runs_already_stored(bare_store: Store) -> None:
    migrate.upgrade(bare_store.engine, "0011")
    with bare_store.engine.begin() as connection:
        for minute, status in enumerate(["succeeded", "failed", "succeeded", "running"]):
            bare_run(connection, minute, status, n_cases=4, n_errors=1, cost=0.25, currency="EUR")

    bare_store.upgrade()

    got = summary(bare_store)
    assert got.counts == {"succeeded": 2, "failed": 1, "running": 1}
    assert (got.cases, got.case_errors, got.cost) == (12, 3, {"EUR": 0.75})
    assert got.last_success_at == T0 + timedelta(minutes=2, seconds=10)
    assert got.updated_at == T0 + timedelta(minutes=3)  # the running run's creation


def judged_run(store: Store, start_run: StartRun, day: int, *, cost: float) -> int:
    """A finished run whose two judge metrics asked 40 + 4 tokens each, one priced."""
    from monitor.records import JudgeUsage

    run_id = start_run(at=T0 + day * DAY)
    usage = JudgeUsage("rubric", "j", "0" * 64, 2, 0, 40, 4, cost, "USD")
    store.runs.finish_run(
        run_id,
        status=RunStatus.SUCCEEDED,
        at=T0 + day * DAY,
        cases=[],
        operations=ops(100, 0.5),
        judges=[usage, replace(usage, metric="faithfulness", cost=None, currency=None)],
    )
    return run_id


def test_judge_usage_is_rolled_up_and_survives_retention(store: Store, start_run: StartRun) -> None:
    for day in range(4):
        judged_run(store, start_run, day, cost=0.25)
    got = summary(store)
    assert (got.judge_prompt_tokens, got.judge_completion_tokens) == (4 * 80, 4 * 8)
    assert got.judge_cost == {"USD": 1.0}
    assert (got.prompt_tokens, got.cost) == (400, {"USD": 2.0})  # the model's, apart

    assert expire_all(store, "runs", before=T0 + 3 * DAY) == 3

    assert without_time(store.runs.run_summaries()) == without_time([got])
    with store.engine.begin() as connection:
        connection.execute(delete(run_rollups))
    store.retention.rebuild_rollups()
    rebuilt = summary(store)  # from what is left: the one run retention kept
    assert (rebuilt.judge_prompt_tokens, rebuilt.judge_cost) == (80, {"USD": 0.25})


def test_the_migration_backfills_judge_usage_of_finished_runs(bare_store: Store) -> None:
    from monitor.store.tables import run_judges

    migrate.upgrade(bare_store.engine, "0023")
    with bare_store.engine.begin() as connection:
        for minute, status in enumerate(["succeeded", "failed", "running"]):
            run_id = bare_run(connection, minute, status)
            connection.execute(
                insert(run_judges).values(
                    run_id=run_id,
                    metric="rubric",
                    judge="j",
                    prompt_sha256="0" * 64,
                    requests=2,
                    errors=0,
                    prompt_tokens=40,
                    completion_tokens=4,
                    cost=0.5,
                    currency="EUR",
                )
            )
    with bare_store.engine.begin() as connection:
        from monitor.store import rollups

        rollups.rebuild(connection)  # the rows 0013 would have made, on this schema

    bare_store.upgrade()

    got = summary(bare_store)
    assert (got.judge_prompt_tokens, got.judge_completion_tokens) == (80, 8)  # not the running
    assert got.judge_cost == {"EUR": 1.0}
