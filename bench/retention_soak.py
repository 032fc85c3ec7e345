"""Does retention keep the store flat? A soak on a simulated clock.

Every simulated day, ``--runs-per-day`` runs of ``--pairs`` suite x model pairs go through
the store's real write path (created, ``--cases`` case results and three metrics each,
finished; every tenth fails), each succeeded run gets a verdict against the pair's baseline,
and every run leaves one delivered notification and two alert history entries. Then the
daemon's retention pass (``monitor.daemon.retention.Retention``) runs at that day's end with
``[store.retention]`` set to ``--keep`` for every kind. Each day prints the rows kept per
table and the database size (SQLite: pages in use; PostgreSQL: ``pg_total_relation_size``),
which should stop growing once ``--keep`` days have passed, while the exported run counter
keeps counting every run ever made.

On PostgreSQL a simulated day takes seconds, too short for autovacuum (a visit a minute at
most, once a fifth of a table is dead) to come by as it would over a real day, so each day
ends with a plain ``VACUUM`` standing in for it; ``--no-vacuum`` leaves it out and shows the
dead rows' space piling up until autovacuum runs.

    python bench/retention_soak.py --days 30 --keep 7d
    python bench/retention_soak.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scrape import scratch_schema
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.config import RetentionConfig
from monitor.daemon.retention import Retention
from monitor.records import CaseResult, MetricValue, RunStatus
from monitor.store import Store
from monitor.store.tables import alert_history, alert_outbox, case_results, runs, verdicts

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = {
    "runs": runs,
    "case_results": case_results,
    "verdicts": verdicts,
    "alert_outbox": alert_outbox,
    "alert_history": alert_history,
}


def cases(count: int, seed: int) -> list[CaseResult]:
    return [
        CaseResult(
            case_id=f"case-{i:04d}",
            input={"question": f"question {i} of a soak run, long enough to be realistic"},
            expected=[f"answer {i}"],
            prediction=f"answer {i if (i + seed) % 7 else i + 1}",
            scores={"exact_match": float((i + seed) % 7 != 0)},
            latency_seconds=0.25,
        )
        for i in range(count)
    ]


def one_run(store: Store, suite: str, model: str, at: datetime, args: argparse.Namespace) -> int:
    run_id = store.runs.create_run(
        suite=suite, model=model, trigger="schedule", dataset_sha256="d", config_hash="c", at=at
    )
    failed = run_id % 10 == 0
    store.runs.finish_run(
        run_id,
        status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
        at=at + timedelta(seconds=30),
        cases=cases(args.cases, run_id),
        metrics=[] if failed else [MetricValue(n, 0.8, 0.7, 0.9, args.cases) for n in "abc"],
    )
    return run_id


def day(store: Store, index: int, args: argparse.Namespace, baselines: dict[str, int]) -> None:
    step = timedelta(days=1) / args.runs_per_day
    for i in range(args.runs_per_day):
        at = T0 + index * timedelta(days=1) + i * step
        model = f"model-{i % args.pairs}"
        run_id = one_run(store, "qa", model, at, args)
        run = store.runs.get_run(run_id)
        assert run is not None
        if run.status is RunStatus.SUCCEEDED:
            if model not in baselines:
                store.verdicts.promote_baseline(run_id, by="soak", reason="first", at=at)
                baselines[model] = run_id
            else:
                store.verdicts.add_verdict(
                    run_id=run_id,
                    baseline_run_id=baselines[model],
                    suite="qa",
                    model=model,
                    outcome="pass",
                    reason="same",
                    at=at,
                    dataset_changed=False,
                    metrics=[],
                    changes=[],
                )
        notify(store, run_id, model, at)


def notify(store: Store, run_id: int, model: str, at: datetime) -> None:
    store.alerts.enqueue_notifications(
        [
            OutboxMessage(
                id=f"n-{run_id}",
                sink="hook",
                fingerprint=f"fp-{model}",
                event="firing",
                payload={"run": run_id},
                status=OutboxStatus.DELIVERED,
                attempts=1,
                created_at=at,
                next_attempt_at=at,
                sequence=run_id,
            )
        ]
    )
    with store.engine.begin() as connection:  # the history a firing/resolved pair leaves
        for phases in (("pending", "firing"), ("firing", "resolved")):
            connection.execute(
                alert_history.insert().values(
                    fingerprint=f"fp-{model}",
                    rule="r",
                    from_phase=phases[0],
                    to_phase=phases[1],
                    at=at,
                    summary="soak",
                )
            )


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in TABLES.items()
        }


def size_bytes(store: Store) -> int:
    """Bytes the database uses: SQLite pages minus free ones, PostgreSQL relation sizes."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            pages = connection.scalar(text("PRAGMA page_count")) or 0
            free = connection.scalar(text("PRAGMA freelist_count")) or 0
            page = connection.scalar(text("PRAGMA page_size")) or 0
            return int((pages - free) * page)
        query = text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        )
        return int(connection.scalar(query) or 0)


def soak(url: str, args: argparse.Namespace) -> None:
    store = Store(url)
    keep = args.keep
    config = RetentionConfig.model_validate(
        dict.fromkeys(("runs", "verdicts", "drift_reports", "alert_history", "outbox"), keep)
    )
    baselines: dict[str, int] = {}
    try:
        store.upgrade()
        print(f"{store.engine.dialect.name}: {args.runs_per_day} runs/day x {args.cases} cases")
        print(f"  keep {keep} of every kind; rows kept and database size at each day's end")
        print(
            f"  {'day':>4} {'runs':>6} {'cases':>8} {'verdicts':>8} {'outbox':>7} "
            f"{'history':>7} {'MB':>7} {'counted':>8} {'pass s':>7}"
        )
        for index in range(args.days):
            day(store, index, args, baselines)
            now = T0 + (index + 1) * timedelta(days=1)
            started = time.perf_counter()
            Retention(config, store, clock=lambda now=now: now).run_once()
            took = time.perf_counter() - started
            if args.vacuum and store.engine.dialect.name == "postgresql":
                vacuum(store)
            rows = counts(store)
            counted = sum(sum(s.counts.values()) for s in store.runs.run_summaries())
            print(
                f"  {index + 1:>4} {rows['runs']:>6} {rows['case_results']:>8} "
                f"{rows['verdicts']:>8} {rows['alert_outbox']:>7} {rows['alert_history']:>7} "
                f"{size_bytes(store) / 1e6:>7.2f} {counted:>8} {took:>7.2f}"
            )
    finally:
        store.close()


def vacuum(store: Store) -> None:
    """What autovacuum does over a day: mark dead rows' space reusable (not ``FULL``)."""
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))


def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/monitor.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs-per-day", type=int, default=48)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--keep", default="7d", help="retention of every kind")
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch schema is used")
    parser.add_argument(
        "--no-vacuum", dest="vacuum", action="store_false", help="no daily VACUUM (PostgreSQL)"
    )
    args = parser.parse_args()
    if args.postgres:
        with scratch_schema(args.postgres) as url:
            soak(url, args)
    else:
        for url in sqlite_url():
            soak(url, args)


if __name__ == "__main__":
    main()
