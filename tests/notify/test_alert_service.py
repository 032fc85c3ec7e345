"""The alert service on a real store: routing to sinks, stale suites on the timer, and a
fresh service (a restart) resuming from the stored state."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from monitor.alerts.engine import Phase
from monitor.alerts.events import RunFinished
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
