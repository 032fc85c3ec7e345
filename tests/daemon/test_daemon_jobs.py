"""The scheduler is rebuilt from the config: one job per scheduled suite x model."""

from __future__ import annotations

from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.store import Store


async def test_one_job_per_scheduled_suite_and_model(tmp_path: Path, store: Store) -> None:
    (tmp_path / "d.jsonl").write_text('{"id": 1, "expected": "a"}\n')
    model = {"adapter": "http", "url": "http://127.0.0.1:1/p"}
    suite = {"dataset": "d.jsonl", "task": "classification", "metrics": ["accuracy"]}
    config = parse_config(
        {
            "models": [{"name": "a", **model}, {"name": "b", **model}],
            "suites": [
                {
                    "name": "hourly",
                    **suite,
                    "models": ["a", "b"],
                    "schedule": {"cron": "0 * * * *"},
                },
                {
                    "name": "often",
                    **suite,
                    "models": ["b"],
                    "schedule": {"every": "30s", "misfire_grace": "1m", "run_at_start": True},
                },
                {"name": "manual", **suite, "models": ["a"]},
            ],
        },
        base_dir=tmp_path,
    )
    scheduler = Daemon(config, store=store)._build_scheduler()
    scheduler.start(paused=True)  # job defaults (coalesce, max_instances) apply on start
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)
    assert sorted(jobs) == [
        "alerts:tick",
        "hourly/a",
        "hourly/b",
        "often/b",
        "runs:sweep",
        "store:retention",
    ]
    assert isinstance(jobs["hourly/a"].trigger, CronTrigger)
    often = jobs["often/b"]
    assert isinstance(often.trigger, IntervalTrigger)
    # The job itself skips a slot whose previous run is still going (and keeps one due
    # while the store does not answer): more than one instance may start.
    assert often.misfire_grace_time == 60 and often.coalesce and often.max_instances == 3
    assert jobs["runs:sweep"].max_instances == 1
    retention = jobs["store:retention"]
    assert isinstance(retention.trigger, IntervalTrigger) and retention.max_instances == 1
    assert retention.trigger.interval.total_seconds() == 600  # [store.retention] every
    assert often.kwargs == {} and [a.name for a in often.args] == ["often", "b"]
