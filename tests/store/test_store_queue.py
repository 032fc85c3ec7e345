"""The work queue on both backends: slots queued once, claims in order and one per suite x
model, leases renewed by their owner only, expired leases handed on, replicas listed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from monitor.records import RunStatus
from monitor.store import Store
from monitor.store import leases as sql
from monitor.store.leases import MAX_ATTEMPTS, Replica
from tests.store.conftest import T0, _postgres_schema_url

S = timedelta(seconds=1)
REASON = "lease expired"


def slot(store: Store, at_s: int, *, suite: str = "qa", idle: bool = False) -> int | str:
    return store.queue.enqueue_slot(
        suite=suite,
        model="prod",
        slot_at=T0 + at_s * S,
        config_hash="h",
        at=T0,
        only_if_idle=idle,
    )


def start_and_finish(store: Store, run_id: int, status: RunStatus = RunStatus.SUCCEEDED) -> None:
    store.runs.start_run(run_id, dataset_sha256="d", config_hash="h", at=T0)
    store.runs.finish_run(run_id, status=status, at=T0)


def test_a_slot_is_queued_once_and_not_while_the_last_run_is_going(store: Store) -> None:
    first = slot(store, 0)
    assert isinstance(first, int)
    assert slot(store, 0) == "duplicate"  # another leader, at a handover
    assert slot(store, 2, idle=True) == "busy"
    assert isinstance(slot(store, 2), int)  # a missed slot is queued behind it
    run = store.runs.get_run(first)
    assert run is not None and run.status is RunStatus.QUEUED and run.created_at == T0


def test_claims_follow_slot_order_one_run_per_pair(store: Store) -> None:
    later, earlier = slot(store, 4), slot(store, 2)  # queued out of order (a catch-up)
    other = slot(store, 9, suite="other")
    claimed = store.queue.claim(owner="a", at=T0, limit=10)
    assert [c.id for c in claimed] == [earlier, other]
    assert store.queue.claim(owner="b", at=T0, limit=10) == []  # 'later' waits its turn
    assert isinstance(earlier, int)
    start_and_finish(store, earlier)
    assert store.queue.claim(owner="b", at=T0, limit=10) == []  # not judged yet
    assert store.queue.release(earlier, owner="b") is False  # not b's lease
    assert store.queue.release(earlier, owner="a") is True
    (next_one,) = store.queue.claim(owner="b", at=T0, limit=10)
    assert next_one.id == later and next_one.slot_at == T0 + 4 * S


def test_renew_touches_only_the_owners_leases(store: Store) -> None:
    mine, theirs = slot(store, 0), slot(store, 0, suite="other")
    store.queue.claim(owner="a", at=T0, limit=1)
    store.queue.claim(owner="b", at=T0, limit=1)
    assert store.queue.renew([mine, theirs], owner="a", at=T0 + 5 * S) == [mine]  # type: ignore[list-item]
    beats = {lease.id: lease.heartbeat_at for lease in store.queue.leases()}
    assert beats == {mine: T0 + 5 * S, theirs: T0}


def test_expired_leases_are_handed_on(store: Store) -> None:
    returned, running, judged = slot(store, 0), slot(store, 0, suite="r"), slot(store, 0, suite="j")
    store.queue.claim(owner="dead", at=T0, limit=3)
    assert isinstance(running, int) and isinstance(judged, int)
    store.runs.start_run(running, dataset_sha256="d", config_hash="h", at=T0)
    start_and_finish(store, judged)
    live = slot(store, 0, suite="live")
    store.queue.claim(owner="alive", at=T0 + 10 * S, limit=1)

    expired = store.queue.expire(before=T0 + 5 * S, at=T0 + 10 * S, owner="me", reason=REASON)

    assert expired.returned == [returned] and expired.adopted == [judged]
    assert expired.interrupted == [running] and list(expired.requeued) == [running]
    rerun = store.runs.get_run(expired.requeued[running])
    assert rerun is not None and rerun.status is RunStatus.QUEUED and rerun.created_at == T0
    old = store.runs.get_run(running)
    assert old is not None and (old.status, old.error) == (RunStatus.INTERRUPTED, REASON)
    owners = {lease.id: lease.owner for lease in store.queue.leases()}
    assert owners == {judged: "me", live: "alive"}  # the live lease is left alone


def test_a_slot_is_re_run_at_most_max_attempts_times(store: Store) -> None:
    run_id = slot(store, 0)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        (claimed,) = store.queue.claim(owner="dead", at=T0, limit=1)
        store.runs.start_run(claimed.id, dataset_sha256="d", config_hash="h", at=T0)
        expired = store.queue.expire(before=T0 + S, at=T0, owner="me", reason=REASON)
        assert expired.interrupted == [claimed.id]
        assert bool(expired.requeued) is (attempt < MAX_ATTEMPTS), attempt
    assert isinstance(run_id, int)


def test_a_run_without_a_lease_is_interrupted_when_stale(store: Store) -> None:
    run_id = store.runs.create_run(
        suite="qa", model="prod", trigger="bench", dataset_sha256="", config_hash="h", at=T0
    )
    queued = store.runs.create_run(
        suite="api",
        model="prod",
        trigger="api",
        dataset_sha256="",
        config_hash="h",
        at=T0,
        status=RunStatus.QUEUED,
    )
    expired = store.queue.expire(before=T0 + S, at=T0 + S, owner="me", reason=REASON)
    assert expired.interrupted == [run_id] and expired.requeued == {}
    assert store.queue.queued_count() == 1  # unclaimed work waits in the queue
    assert store.runs.get_run(queued).status is RunStatus.QUEUED  # type: ignore[union-attr]


def test_replicas_announce_refresh_and_withdraw(store: Store) -> None:
    row = Replica("h:1", "h", 1, "1.0", T0, T0, leader=False)
    store.queue.announce(row)
    store.queue.announce(Replica("h:1", "h", 1, "1.0", T0, T0 + 5 * S, leader=True))
    store.queue.announce(Replica("h:2", "h", 2, "1.0", T0, T0, leader=False))
    (fresh,) = store.queue.replicas(seen_after=T0 + S)
    assert (fresh.name, fresh.leader, fresh.seen_at) == ("h:1", True, T0 + 5 * S)
    store.queue.withdraw("h:1")
    assert [r.name for r in store.queue.replicas()] == ["h:2"]


@pytest.fixture
def pg_store() -> Iterator[Store]:
    for url in _postgres_schema_url():
        store = Store(url)
        store.upgrade()
        yield store
        store.close()


@pytest.mark.integration
def test_two_claimers_skip_each_others_locked_rows(pg_store: Store) -> None:
    """While one replica's claim transaction holds its rows, another's claim skips them
    instead of waiting (PostgreSQL's ``FOR UPDATE SKIP LOCKED``; SQLite serialises its
    writers instead)."""
    store = pg_store
    first, second = slot(store, 0), slot(store, 0, suite="other")
    engine = create_engine(store.engine.url, pool_size=2)
    try:
        with engine.begin() as a, engine.begin() as b:
            mine = sql.claim(a, owner="a", at=T0, limit=1)
            theirs = sql.claim(b, owner="b", at=T0, limit=5)  # would block without SKIP LOCKED
            assert [c.id for c in mine] == [first]
            assert [c.id for c in theirs] == [second]
    finally:
        engine.dispose()
