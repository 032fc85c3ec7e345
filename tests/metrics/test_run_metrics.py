"""Run counts on /metrics as the daemon composes them: finished runs as a counter with
every terminal status of every configured suite x model at 0 from the start, queued and
running runs as a gauge, ad-hoc pairs of the API as they appear, and no reset on restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config, parse_config
from monitor.daemon.lifecycle import Daemon
from monitor.records import CaseResult, RunStatus
from monitor.store import Store

T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
FINISHED = "monitor_runs_finished_total"
ACTIVE = "monitor_runs"

Samples = dict[tuple[str, str, str], float]


def configured(tmp_path: Path) -> Config:
    """Suite ``qa`` on models ``prod`` and ``cand``, suite ``smoke`` on ``prod``."""
    (tmp_path / "d.jsonl").write_text('{"id": 1, "expected": "a"}\n')
    model = {"adapter": "http", "url": "http://127.0.0.1:1/p"}
    suite = {"dataset": "d.jsonl", "task": "classification", "metrics": ["accuracy"]}
    return parse_config(
        {
            "models": [{"name": "prod", **model}, {"name": "cand", **model}],
            "suites": [
                {"name": "qa", **suite, "models": ["prod", "cand"]},
                {"name": "smoke", **suite, "models": ["prod"]},
            ],
        },
        base_dir=tmp_path,
    )


def scrape(config: Config, store: Store) -> dict[str, Samples]:
    """Per family, (suite, model, status) -> value, from the daemon's own registry."""
    # Scraped soon after the runs below: an ad-hoc pair is exported for adhoc_series_ttl.
    daemon = Daemon(config, store=store, clock=lambda: T0 + timedelta(hours=1))
    text = generate_latest(daemon.registry).decode()
    families: dict[str, Samples] = {FINISHED: {}, ACTIVE: {}}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in families:
                key = (s.labels["suite"], s.labels["model"], s.labels["status"])
                families[s.name][key] = s.value
    return families


def start(store: Store, suite: str, model: str, minute: int, *, queued: bool = False) -> int:
    return store.runs.create_run(
        suite=suite,
        model=model,
        trigger="schedule",
        dataset_sha256="d",
        config_hash="c",
        at=T0 + timedelta(minutes=minute),
        status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
    )


def finish(store: Store, run_id: int, status: RunStatus, minute: int) -> None:
    store.runs.finish_run(
        run_id,
        status=status,
        at=T0 + timedelta(minutes=minute, seconds=30),
        cases=[CaseResult("c1", {}, "a", prediction="a")],
        error=None if status is RunStatus.SUCCEEDED else "boom",
    )


def test_a_fresh_daemon_exports_every_status_of_every_configured_pair_at_0(
    tmp_path: Path, store: Store
) -> None:
    samples = scrape(configured(tmp_path), store)

    pairs = [("qa", "prod"), ("qa", "cand"), ("smoke", "prod")]
    assert samples[FINISHED] == {
        (suite, model, status): 0
        for suite, model in pairs
        for status in ("succeeded", "failed", "interrupted")
    }
    assert samples[ACTIVE] == {
        (suite, model, status): 0 for suite, model in pairs for status in ("queued", "running")
    }


def test_finished_runs_only_go_up_while_queued_and_running_come_and_go(
    tmp_path: Path, store: Store
) -> None:
    config = configured(tmp_path)
    first = start(store, "qa", "prod", 0)
    waiting = start(store, "qa", "prod", 0, queued=True)
    during = scrape(config, store)
    finish(store, first, RunStatus.FAILED, 1)
    store.runs.start_run(waiting, dataset_sha256="d", config_hash="c", at=T0 + timedelta(minutes=2))
    finish(store, waiting, RunStatus.SUCCEEDED, 3)
    finish(store, start(store, "qa", "prod", 4), RunStatus.FAILED, 4)
    after = scrape(config, store)

    assert during[ACTIVE][("qa", "prod", "running")] == 1
    assert during[ACTIVE][("qa", "prod", "queued")] == 1
    assert during[FINISHED][("qa", "prod", "failed")] == 0
    assert after[ACTIVE][("qa", "prod", "running")] == 0
    assert after[ACTIVE][("qa", "prod", "queued")] == 0
    assert after[FINISHED][("qa", "prod", "failed")] == 2
    assert after[FINISHED][("qa", "prod", "succeeded")] == 1
    assert after[FINISHED][("qa", "prod", "interrupted")] == 0
    # The other pairs are untouched, still exported.
    assert after[FINISHED][("qa", "cand", "failed")] == 0


def test_an_ad_hoc_pair_of_the_api_appears_with_its_first_run(tmp_path: Path, store: Store) -> None:
    config = configured(tmp_path)
    run_id = start(store, "qa", "adhoc-endpoint", 0)
    running = scrape(config, store)
    finish(store, run_id, RunStatus.FAILED, 1)
    failed = scrape(config, store)

    key = ("qa", "adhoc-endpoint")
    assert running[ACTIVE][(*key, "running")] == 1
    # At 0 while the run is in flight, so the first failure is a step from 0.
    assert {s: running[FINISHED][(*key, s)] for s in ("succeeded", "failed", "interrupted")} == {
        "succeeded": 0,
        "failed": 0,
        "interrupted": 0,
    }
    assert failed[FINISHED][(*key, "failed")] == 1
    assert failed[ACTIVE][(*key, "running")] == 0


def test_a_restarted_daemon_goes_on_counting_from_the_store(tmp_path: Path) -> None:
    """The counts come from the store: a new daemon process on the same database exports
    what the old one did (no counter reset for ``increase()`` to absorb), and the run
    the old one left running is counted once it is finished as interrupted."""
    config = configured(tmp_path)
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    with Store(url) as store:
        store.upgrade()
        for minute in range(3):
            finish(store, start(store, "qa", "prod", minute), RunStatus.FAILED, minute)
        start(store, "qa", "prod", 5)  # left running by a crash
        before = scrape(config, store)
    with Store(url) as store:
        after_restart = scrape(config, store)
        store.runs.interrupt_running(reason="daemon restarted", at=T0 + timedelta(minutes=9))
        interrupted = scrape(config, store)

    assert before[FINISHED][("qa", "prod", "failed")] == 3
    assert after_restart == before
    assert interrupted[FINISHED][("qa", "prod", "failed")] == 3
    assert interrupted[FINISHED][("qa", "prod", "interrupted")] == 1
    assert interrupted[ACTIVE][("qa", "prod", "running")] == 0
