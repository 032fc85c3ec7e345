"""Store contract for alerting, on SQLite and PostgreSQL: states and outbox in one
transaction, leases and SKIP LOCKED claims, attempts, dead letters, silences, history."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from monitor.alerts import AlertState, Phase, Transition
from monitor.alerts.records import OutboxMessage, OutboxStatus
from monitor.errors import StoreError
from monitor.store import Store
from tests.store.conftest import T0


def state(fp: str = "f1", phase: Phase = Phase.FIRING) -> AlertState:
    return AlertState(
        fingerprint=fp,
        rule="r",
        labels={"alertname": "r", "severity": "critical"},
        phase=phase,
        count=3,
        active_since=T0,
        fired_at=T0,
        resolved_at=None,
        notified_at=T0,
        updated_at=T0,
        summary="f1 = 0.5",
        value=0.5,
        threshold=0.85,
        details={"metric": "f1"},
        links={"run": "/v1/runs/1"},
    )


def message(
    mid: str,
    sink: str = "hook",
    *,
    at: timedelta = timedelta(0),
    fp: str = "f1",
    sequence: int = 1,
    event: str = "firing",
) -> OutboxMessage:
    return OutboxMessage(
        id=mid,
        sink=sink,
        fingerprint=fp,
        event=event,
        payload={"id": mid, "schema_version": "1", "alert": {"rule": "r"}},
        status=OutboxStatus.PENDING,
        attempts=0,
        created_at=T0 + at,
        next_attempt_at=T0 + at,
        sequence=sequence,
    )


def test_transitions_and_outbox_are_stored_together(store: Store) -> None:
    store.alerts.apply_alert_transitions(
        [Transition(state(), Phase.PENDING, "firing")], [message("m1")]
    )

    (stored,) = store.alerts.alert_states()
    assert stored == state()
    (entry,) = store.alerts.alert_history()
    assert (entry.from_phase, entry.to_phase, entry.value) == ("pending", "firing", 0.5)
    (queued,) = store.alerts.list_notifications()
    assert queued.id == "m1" and queued.payload == message("m1").payload


def test_a_failing_outbox_insert_rolls_back_the_state_change(store: Store) -> None:
    store.alerts.apply_alert_transitions([], [message("m1")])
    with pytest.raises(StoreError):
        # A duplicate outbox id fails the transaction: the state must not be stored.
        store.alerts.apply_alert_transitions([Transition(state(), Phase.PENDING)], [message("m1")])
    assert store.alerts.alert_states() == []


def test_upsert_keeps_one_row_per_fingerprint(store: Store) -> None:
    store.alerts.apply_alert_transitions([Transition(state(), Phase.PENDING, "firing")], [])
    resolved = state(phase=Phase.RESOLVED)
    store.alerts.apply_alert_transitions([Transition(resolved, Phase.FIRING, "resolved")], [])
    assert [s.phase for s in store.alerts.alert_states()] == [Phase.RESOLVED]
    assert store.alerts.alert_states(Phase.FIRING) == []
    assert [h.to_phase for h in store.alerts.alert_history(fingerprint="f1")] == [
        "resolved",
        "firing",
    ]


def test_claim_leases_due_rows_once(store: Store) -> None:
    store.alerts.enqueue_notifications([message("m1"), message("m2", at=timedelta(minutes=5))])
    lease = T0 + timedelta(minutes=1)

    first = store.alerts.claim_notifications(now=T0, lease_until=lease)
    again = store.alerts.claim_notifications(now=T0 + timedelta(seconds=30), lease_until=lease)
    after_lease = store.alerts.claim_notifications(
        now=T0 + timedelta(minutes=2), lease_until=T0 + timedelta(minutes=3)
    )

    assert [m.id for m in first] == ["m1"]
    assert again == []
    assert [m.id for m in after_lease] == ["m1"]  # a dead worker's lease ran out


def test_attempts_retry_deliver_and_dead_letter(store: Store) -> None:
    store.alerts.enqueue_notifications([message("m1", fp="f1"), message("m2", fp="f2")])
    store.alerts.claim_notifications(now=T0, lease_until=T0 + timedelta(minutes=1))
    retry_at = T0 + timedelta(seconds=10)
    store.alerts.record_delivery_attempt(
        "m1", at=T0, status=OutboxStatus.PENDING, next_attempt_at=retry_at, error="HTTP 500"
    )
    store.alerts.record_delivery_attempt("m2", at=T0, status=OutboxStatus.DEAD, error="HTTP 500")

    assert (
        store.alerts.claim_notifications(now=T0 + timedelta(seconds=5), lease_until=retry_at) == []
    )
    (m1,) = store.alerts.claim_notifications(
        now=retry_at, lease_until=retry_at + timedelta(minutes=1)
    )
    assert (m1.attempts, m1.last_error) == (1, "HTTP 500")
    store.alerts.record_delivery_attempt("m1", at=retry_at, status=OutboxStatus.DELIVERED)

    (dead,) = store.alerts.list_notifications(status=OutboxStatus.DEAD)
    assert dead.id == "m2"
    stats = store.alerts.outbox_stats()
    assert stats.by_status == {
        "pending": 0,
        "delivered": 1,
        "superseded": 0,
        "dead": 1,
        "discarded": 0,
    }
    assert stats.failed_attempts == 2


def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    store.alerts.enqueue_notifications([message(f"m{i:02d}", fp=f"f{i:02d}") for i in range(40)])
    claimed: list[list[str]] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        got = store.alerts.claim_notifications(
            now=T0, lease_until=T0 + timedelta(minutes=1), limit=15
        )
        claimed.append([m.id for m in got])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 40


def test_silences_and_last_notified(store: Store) -> None:
    sid = store.alerts.add_silence(
        matchers={"team": "ml"}, starts_at=T0, ends_at=T0 + timedelta(hours=2), created_by="me"
    )
    (silence,) = store.alerts.silences(active_at=T0 + timedelta(hours=1))
    assert silence.id == sid and silence.matches({"team": "ml", "x": "y"}, T0)
    assert not silence.matches({"team": "web"}, T0)
    assert store.alerts.silences(active_at=T0 + timedelta(hours=3)) == []
    with pytest.raises(ValueError, match="matcher"):
        store.alerts.add_silence(matchers={}, starts_at=T0, ends_at=T0, created_by="me")

    store.alerts.enqueue_notifications([message("m1"), message("m2", at=timedelta(minutes=1))])
    assert store.alerts.last_notified(["hook"]) == {("f1", "hook"): T0 + timedelta(minutes=1)}
