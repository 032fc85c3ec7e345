"""The delivery worker's policy as units: which failures are permanent, how long the
transient ones are retried (``max_age``, not a count), and what Alertmanager is told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from monitor.alerts.payload import build_payload, sample_state
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.config.alerts import AlertsConfig, DeliveryConfig, SinkConfig
from monitor.notify.delivery import DeliveryWorker, backoff_delay
from monitor.sinks import build_sink
from monitor.sinks.alertmanager import alertmanager_alerts
from monitor.sinks.base import is_permanent
from monitor.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        pytest.param(400, True, id="400"),
        pytest.param(401, True, id="401"),
        pytest.param(404, True, id="404"),
        pytest.param(410, True, id="410"),
        pytest.param(308, True, id="redirect"),
        pytest.param(408, False, id="408"),
        pytest.param(429, False, id="429"),
        pytest.param(500, False, id="500"),
        pytest.param(503, False, id="503"),
    ],
)
def test_only_refusals_are_permanent(status: int, permanent: bool) -> None:
    assert is_permanent(status) is permanent


def message() -> OutboxMessage:
    state = sample_state(T0, sink="s")
    payload = build_payload("msg_1", state, event="firing", at=T0, public_url=None, sequence=1)
    return OutboxMessage(
        "msg_1", "s", "fp", "firing", payload, OutboxStatus.PENDING, 0, T0, T0, sequence=1
    )


def slack() -> SinkConfig:
    return SinkConfig.model_validate({"name": "s", "kind": "slack", "url": "https://h.example/x"})


def transport(answer: int | type[Exception]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, int):
            return httpx.Response(answer)
        raise answer("boom", request=request)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("answer", "age", "status", "error"),
    [
        pytest.param(404, timedelta(0), OutboxStatus.DEAD, "sink 's': HTTP 404", id="404-dead"),
        pytest.param(503, timedelta(0), OutboxStatus.PENDING, "sink 's': HTTP 503", id="503-retry"),
        pytest.param(
            httpx.ConnectError,
            timedelta(hours=23),
            OutboxStatus.PENDING,
            "sink 's': ConnectError",
            id="refused-young",
        ),
        pytest.param(
            httpx.ConnectError,
            timedelta(hours=24),
            OutboxStatus.DEAD,
            "sink 's': ConnectError (still failing after max_age 1 day, 0:00:00)",
            id="refused-too-old",
        ),
        pytest.param(
            httpx.ReadTimeout,
            timedelta(minutes=1),
            OutboxStatus.PENDING,
            "sink 's': timed out",
            id="timeout-retry",
        ),
    ],
)
async def test_permanent_and_transient_failures(
    tmp_path: Path,
    answer: int | type[Exception],
    age: timedelta,
    status: OutboxStatus,
    error: str,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    store.upgrade()
    try:
        store.alerts.enqueue_notifications([message()])
        sink = build_sink(slack(), transport=transport(answer))
        worker = DeliveryWorker(DeliveryConfig(), store, {"s": sink}, clock=lambda: T0 + age)
        assert await worker.deliver_due() == 1
        await worker.aclose()
        (row,) = store.alerts.list_notifications()
        assert (row.status, row.last_error, row.attempts) == (status, error, 1)
    finally:
        store.close()


def test_backoff_stays_capped_after_thousands_of_attempts() -> None:
    config = DeliveryConfig(backoff=timedelta(seconds=1), max_backoff=timedelta(minutes=5))
    assert backoff_delay(5000, config) == timedelta(minutes=5)


def test_max_attempts_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(ValueError, match=r"'max_attempts' was removed.*max_age"):
        AlertsConfig.model_validate({"delivery": {"max_attempts": 8}})
    assert DeliveryConfig().max_age == timedelta(hours=24)
    with pytest.raises(ValueError, match="'max_age' must be a positive duration"):
        DeliveryConfig.model_validate({"max_age": "0s"})


def test_alertmanager_firing_ends_after_four_resend_intervals_from_sending() -> None:
    payload = {
        "sequence": 4,
        "alert": {
            "status": "firing",
            "summary": "x",
            "labels": {"alertname": "a"},
            "starts_at": "2024-05-01T12:00:00Z",
            "ends_at": None,
            "links": {},
        },
    }
    sent = T0 + timedelta(hours=3)  # delivered long after it was queued
    (alert,) = alertmanager_alerts(payload, now=sent, valid_for=4 * timedelta(minutes=1))
    assert alert["endsAt"] == "2024-05-01T15:04:00Z"
    assert alert["annotations"]["sequence"] == "4"
    assert alert["labels"] == {"alertname": "a"}  # grouping untouched
    json.dumps(alert)
