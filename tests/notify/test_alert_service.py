"""The alert service on a real store: routing to sinks, stale suites on the timer, a
fresh service (a restart) resuming from the stored state, and two replicas evaluating
one at a time."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from monitor.alerts.engine import Phase
from monitor.alerts.events import RunFinished, Tick
from monitor.config.alerts import AlertsConfig
from monitor.notify.service import AlertService
from monitor.records import Run, RunStatus
from monitor.store import Store
from tests.store.conftest import T0

SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()


def config(*rules: dict[str, Any]) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "rules": list(rules),
            "sinks": [
                {
                    "name": "pager",
                    "kind": "webhook",
                    "url": "http://h/p",
                    "secret": SECRET,
                    "severities": ["critical"],
                },
                {"name": "ml-chat", "kind": "slack", "url": "http://h/s", "match": {"team": "ml"}},
            ],
        }
    )


def failed(at_minutes: int, model: str = "prod") -> RunFinished:
    at = T0 + timedelta(minutes=at_minutes)
    return RunFinished(
        Run(1, "qa", model, RunStatus.FAILED, "s", at, at, at, "d", "c", 3, 3, "x", ())
    )


def succeeded(at: datetime) -> RunFinished:
    return RunFinished(
        Run(2, "qa", "prod", RunStatus.SUCCEEDED, "s", at, at, at, "d", "c", 3, 0, None, ())
    )


def test_routing_by_severity_and_labels(store: Store) -> None:
    service = AlertService(
        config(
            {"name": "crit", "kind": "run_failed", "severity": "critical"},
            {"name": "ml", "kind": "run_failed", "labels": {"team": "ml"}},
        ),
        store,
        clock=lambda: T0,
    )
    service.handle_sync(failed(0))
    routed = sorted((m.payload["alert"]["rule"], m.sink) for m in store.alerts.list_notifications())
    assert routed == [("crit", "pager"), ("ml", "ml-chat")]


def test_stale_suite_fires_on_the_timer(store: Store) -> None:
    now = [T0]
    service = AlertService(
        config({"name": "stale", "kind": "stale", "after": "1h", "severity": "critical"}),
        store,
        clock=lambda: now[0],
    )
    now[0] = T0 + timedelta(minutes=30)
    service.handle_sync(service.tick([("qa", "prod")]))
    assert store.alerts.list_notifications() == []
    now[0] = T0 + timedelta(minutes=61)
    service.handle_sync(service.tick([("qa", "prod")]))
    (message,) = store.alerts.list_notifications()
    assert (
        message.sink == "pager" and "no successful run ever" in message.payload["alert"]["summary"]
    )


def test_a_restarted_service_resumes_instead_of_refiring(store: Store) -> None:
    rules = config({"name": "crit", "kind": "run_failed", "severity": "critical", "for": 2})
    AlertService(rules, store, clock=lambda: T0).handle_sync(failed(0))
    (pending,) = store.alerts.alert_states()
    assert pending.phase is Phase.PENDING and store.alerts.list_notifications() == []

    restarted = AlertService(rules, store, clock=lambda: T0)
    restarted.handle_sync(failed(1))  # the second bad run counts across the restart
    restarted.handle_sync(failed(2))
    again = AlertService(rules, store, clock=lambda: T0)
    again.handle_sync(failed(3))
    assert [s.phase for s in store.alerts.alert_states()] == [Phase.FIRING]
    assert len(store.alerts.list_notifications()) == 1


RACES = 60


def test_replicas_evaluate_one_at_a_time(store_url: str) -> None:
    """Two replicas (two stores, two connection pools) on one database: the leader's timer
    repeats a firing alert while the other replica resolves it from a run it finished, at
    once, many times. Each evaluation must start from the states the other one stored: a
    stale repeat must not overwrite ``resolved`` (nor be sent after it), and the two must
    never take the same ``sequence``. (On SQLite only one daemon runs, but the store
    serialises evaluations there too: each is one ``BEGIN IMMEDIATE`` transaction.)"""
    rules = config(
        {"name": "crit", "kind": "run_failed", "severity": "critical", "repeat_interval": "1m"}
    )
    leader_store, other_store = Store(store_url), Store(store_url)
    leader_store.upgrade()
    leader = AlertService(rules, leader_store, clock=lambda: T0)
    other = AlertService(rules, other_store, clock=lambda: T0)
    barrier = threading.Barrier(2)

    def at_once(service: AlertService, event: RunFinished | Tick) -> None:
        barrier.wait(timeout=30)
        service.handle_sync(event)

    # Either the repeat went first (the resolve follows it) or it found the alert resolved
    # and sent nothing; and each notification takes the next sequence number.
    allowed = (["firing", "resolved"], ["firing", "firing", "resolved"])
    problems: list[str] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            for race in range(RACES):
                start = T0 + timedelta(minutes=10 * race)
                before = leader_store.alerts.list_notifications(limit=1000)
                leader.handle_sync(failed(10 * race))  # fires, notified at ``start``
                repeat = Tick(now=start + timedelta(minutes=2), since=T0, suites=(), streams=())
                futures = [
                    pool.submit(at_once, leader, repeat),
                    pool.submit(at_once, other, succeeded(start + timedelta(minutes=1))),
                ]
                for future in futures:
                    future.result(timeout=60)
                (state,) = leader_store.alerts.alert_states()
                seen = {m.id for m in before}
                new = sorted(
                    (
                        m
                        for m in leader_store.alerts.list_notifications(limit=1000)
                        if m.id not in seen
                    ),
                    key=lambda m: m.sequence,
                )
                events = [m.event for m in new]
                numbers = [m.sequence for m in new]
                expected = list(range(len(before) + 1, len(before) + len(new) + 1))
                if state.phase is not Phase.RESOLVED or events not in allowed:
                    problems.append(f"race {race}: left {state.phase}, sent {events}")
                if numbers != expected:
                    problems.append(f"race {race}: sequences {numbers}, expected {expected}")
    finally:
        leader_store.close()
        other_store.close()
    assert problems == []
