"""Delivery keyed by alert, on SQLite and PostgreSQL: per sink and fingerprint at most one
row in flight, newer states supersede undelivered older ones, and dead letters can be
redriven or discarded, each recorded in the alert history."""

from __future__ import annotations

import threading
from datetime import timedelta

from monitor.alerts.records import OutboxStatus
from monitor.store import Store
from tests.store.conftest import T0
from tests.store.test_store_alerts import message

LEASE = timedelta(minutes=1)


def statuses(store: Store) -> dict[str, OutboxStatus]:
    return {m.id: m.status for m in store.alerts.list_notifications()}


def test_newer_state_supersedes_undelivered_older_ones(store: Store) -> None:
    store.alerts.enqueue_notifications(
        [
            message("fire", sequence=1),
            message("resolve", sequence=2, event="resolved", at=timedelta(seconds=1)),
            message("fire-elsewhere", sink="other", sequence=1),
        ]
    )
    claimed = store.alerts.claim_notifications(
        now=T0 + timedelta(seconds=1), lease_until=T0 + LEASE
    )
    assert sorted(m.id for m in claimed) == ["fire-elsewhere", "resolve"]
    assert statuses(store)["fire"] is OutboxStatus.SUPERSEDED  # recorded, never sent


def test_one_row_per_alert_in_flight_and_in_order(store: Store) -> None:
    store.alerts.enqueue_notifications([message("fire", sequence=1)])
    (first,) = store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    assert first.id == "fire"
    # A newer state arrives while the older one is being sent: it waits, and the row in
    # flight is not superseded under the sender's feet.
    store.alerts.enqueue_notifications([message("resolve", sequence=2, event="resolved")])
    assert store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE) == []
    assert statuses(store)["fire"] is OutboxStatus.PENDING
    # The send failed: the newer state now supersedes it and goes next.
    store.alerts.record_delivery_attempt(
        "fire", at=T0, status=OutboxStatus.PENDING, next_attempt_at=T0
    )
    (second,) = store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    assert second.id == "resolve"
    assert statuses(store)["fire"] is OutboxStatus.SUPERSEDED


def test_expired_lease_lets_the_newest_state_go(store: Store) -> None:
    store.alerts.enqueue_notifications([message("fire", sequence=1)])
    store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)  # the worker then dies
    store.alerts.enqueue_notifications([message("resolve", sequence=2, event="resolved")])
    later = T0 + LEASE + timedelta(seconds=1)
    (claimed,) = store.alerts.claim_notifications(now=later, lease_until=later + LEASE)
    assert claimed.id == "resolve"
    assert statuses(store)["fire"] is OutboxStatus.SUPERSEDED


def test_concurrent_claims_take_one_row_per_alert(store: Store) -> None:
    # 4 alerts x 10 states each; 4 workers claim at once.
    store.alerts.enqueue_notifications(
        [
            message(f"{fp}-{seq:02d}", fp=fp, sequence=seq, at=timedelta(seconds=seq))
            for fp in ("a", "b", "c", "d")
            for seq in range(1, 11)
        ]
    )
    claimed: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)
    now = T0 + timedelta(seconds=10)

    def claim() -> None:
        barrier.wait()
        got = store.alerts.claim_notifications(now=now, lease_until=now + LEASE, limit=20)
        with lock:
            claimed.extend(m.id for m in got)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ["a-10", "b-10", "c-10", "d-10"]
    assert list(statuses(store).values()).count(OutboxStatus.SUPERSEDED) == 36


def test_redrive_requeues_dead_letters_with_a_fresh_age(store: Store) -> None:
    store.alerts.enqueue_notifications([message("m1", fp="f1"), message("m2", fp="f2")])
    store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    for mid in ("m1", "m2"):
        store.alerts.record_delivery_attempt(mid, at=T0, status=OutboxStatus.DEAD, error="HTTP 400")
    later = T0 + timedelta(days=2)

    (redriven,) = store.alerts.redrive_dead_letters(
        ids=["m1"], at=later, by="alice", comment="fixed"
    )
    assert redriven.id == "m1"
    assert statuses(store) == {"m1": OutboxStatus.PENDING, "m2": OutboxStatus.DEAD}
    (claimed,) = store.alerts.claim_notifications(now=later, lease_until=later + LEASE)
    assert claimed.id == "m1" and claimed.retry_since == later
    assert store.alerts.outbox_stats().by_status["dead"] == 1

    (discarded,) = store.alerts.discard_dead_letters(at=later, by="bob")
    assert discarded.id == "m2"
    assert store.alerts.outbox_stats().by_status["dead"] == 0
    assert store.alerts.discard_dead_letters(at=later, by="bob") == []  # nothing dead is left
    # The gauge of what is dead dropped to 0; the count of deaths did not go down.
    assert store.alerts.outbox_stats().dead_total == 2

    entries = store.alerts.alert_history()
    assert [(e.from_phase, e.to_phase) for e in entries] == [
        ("dead", "discarded"),
        ("dead", "redriven"),
    ]
    assert entries[1].summary == (
        "firing notification m1 (sequence 1) to sink 'hook' redriven by alice: fixed"
    )
    assert entries[1].rule == "r" and entries[1].fingerprint == "f1"


def test_a_redriven_letter_older_than_a_delivered_state_is_not_sent(store: Store) -> None:
    store.alerts.enqueue_notifications([message("fire", sequence=1)])
    store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    store.alerts.record_delivery_attempt("fire", at=T0, status=OutboxStatus.DEAD, error="HTTP 400")
    store.alerts.enqueue_notifications([message("resolve", sequence=2, event="resolved")])
    store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    store.alerts.record_delivery_attempt("resolve", at=T0, status=OutboxStatus.DELIVERED)

    store.alerts.redrive_dead_letters(at=T0, by="alice")
    assert store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE) == []
    assert statuses(store)["fire"] is OutboxStatus.SUPERSEDED


def test_sequences_and_pending_keys(store: Store) -> None:
    store.alerts.enqueue_notifications(
        [
            message("a1", fp="a", sequence=1),
            message("a2", fp="a", sequence=2, sink="other"),
            message("b1", fp="b", sequence=5),
        ]
    )
    assert store.alerts.notification_sequences(["a", "b", "c"]) == {"a": 2, "b": 5}
    assert store.alerts.pending_notifications(["hook"]) == {("a", "hook"), ("b", "hook")}


def test_migration_0008_numbers_existing_rows_in_creation_order(bare_store: Store) -> None:
    from alembic import command
    from sqlalchemy import insert, select

    from monitor.store import migrate
    from monitor.store.tables import alert_outbox

    migrate.upgrade(bare_store.engine, "0007")
    old = [("x", "hook", 2), ("y", "hook", 0), ("z", "hook", 1), ("w", "other", 5)]
    rows = [
        {
            "id": mid,
            "sink": sink,
            "fingerprint": "f1",
            "event": "firing",
            "payload": {},
            "status": "pending",
            "attempts": 0,
            "created_at": T0 + timedelta(seconds=s),
            "next_attempt_at": T0,
        }
        for mid, sink, s in old
    ]
    columns = [c for c in alert_outbox.c if c.name not in ("sequence", "retry_since")]
    legacy = alert_outbox.__class__("alert_outbox", alert_outbox.metadata.__class__())
    for column in columns:
        legacy.append_column(column._copy())
    with bare_store.engine.begin() as connection:
        connection.execute(insert(legacy), rows)
    bare_store.upgrade()

    with bare_store.engine.connect() as connection:
        got = connection.execute(
            select(alert_outbox.c.id, alert_outbox.c.sequence, alert_outbox.c.retry_since)
        ).all()
    numbered = {mid: (seq, since) for mid, seq, since in got}
    assert numbered == {
        "y": (1, T0),
        "z": (2, T0 + timedelta(seconds=1)),
        "x": (3, T0 + timedelta(seconds=2)),
        "w": (1, T0 + timedelta(seconds=5)),
    }
    claimed = bare_store.alerts.claim_notifications(now=T0, lease_until=T0 + LEASE)
    assert [m.id for m in claimed] == ["x", "w"]  # x supersedes y and z; w is another sink's
    assert statuses(bare_store)["y"] is OutboxStatus.SUPERSEDED

    with bare_store.engine.begin() as connection:
        command.downgrade(migrate.alembic_config(connection), "0007")
    with bare_store.engine.connect() as connection:
        status = dict(connection.execute(select(legacy.c.id, legacy.c.status)).all())
    assert status == {"x": "pending", "y": "delivered", "z": "delivered", "w": "pending"}
