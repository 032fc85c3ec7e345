"""The stream window queue on both backends: a window queued once, claims in window order
and one per stream, leases renewed by their owner only, expired leases back in the queue,
two PostgreSQL claimers skipping each other's locked rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine

from monitor.store import Store
from monitor.store import window_leases as sql
from monitor.store.window_leases import DueWindow
from tests.store.conftest import T0, _postgres_schema_url

S = timedelta(seconds=1)


def rows(stream: str, *indexes: int, size: int = 100) -> list[DueWindow]:
    return [
        DueWindow(
            stream,
            f"rows:{i * size}-{(i + 1) * size}",
            i,
            first_row=i * size,
            end_row=(i + 1) * size,
        )
        for i in indexes
    ]


def keys(claimed: list[sql.ClaimedWindow]) -> list[str]:
    return [c.window.key for c in claimed]


def test_a_window_is_queued_once(store: Store) -> None:
    first = store.windows.enqueue(rows("wine", 0, 1), at=T0)
    assert len(first) == 2
    # The next tick, or a new leader at a handover, queues the same windows again.
    assert len(store.windows.enqueue(rows("wine", 0, 1, 2), at=T0 + S)) == 1
    assert store.windows.last_key("wine", "rows") == "rows:200-300"
    assert store.windows.last_key("wine", "time") is None
    assert [(c.stream, c.queued, c.leased) for c in store.windows.counts()] == [("wine", 3, 0)]


def test_claims_follow_window_order_one_window_per_stream(store: Store) -> None:
    store.windows.enqueue(rows("wine", 2), at=T0)
    store.windows.enqueue(rows("wine", 1) + rows("beer", 0), at=T0)  # queued out of order
    claimed = store.windows.claim(owner="a", at=T0, limit=10, streams=["wine", "beer"])
    assert sorted(keys(claimed)) == ["rows:0-100", "rows:100-200"]
    wine = next(c for c in claimed if c.window.stream == "wine")
    assert wine.window.position == 1 and wine.window.first_row == 100 and wine.window.end_row == 200
    # 'rows:200-300' waits until the window before it is judged.
    assert store.windows.claim(owner="b", at=T0, limit=10, streams=["wine", "beer"]) == []
    assert store.windows.finish(wine.id, owner="b") is False  # not b's lease
    assert store.windows.finish(wine.id, owner="a") is True
    (following,) = store.windows.claim(owner="b", at=T0, limit=10, streams=["wine"])
    assert following.window.key == "rows:200-300"
    assert [(c.stream, c.queued, c.leased) for c in store.windows.counts()] == [
        ("beer", 0, 1),
        ("wine", 0, 1),
    ]


def test_only_the_streams_a_replica_has_are_claimed(store: Store) -> None:
    store.windows.enqueue(rows("wine", 0) + rows("beer", 0), at=T0)
    (claimed,) = store.windows.claim(owner="a", at=T0, limit=10, streams=["beer"])
    assert claimed.window.stream == "beer"
    assert store.windows.claim(owner="a", at=T0, limit=10, streams=[]) == []


def test_a_claim_says_where_the_streams_queue_ends(store: Store) -> None:
    hour = timedelta(hours=1)
    due = [
        DueWindow("t", f"time:{i}", i, start=T0 + i * hour, end=T0 + (i + 1) * hour)
        for i in range(3)
    ]
    store.windows.enqueue(due, at=T0)
    (claimed,) = store.windows.claim(owner="a", at=T0, limit=1, streams=["t"])
    assert claimed.window.start == T0 and claimed.until == T0 + 3 * hour


def test_renew_touches_only_the_owners_leases(store: Store) -> None:
    store.windows.enqueue(rows("mine", 0) + rows("theirs", 0), at=T0)
    (mine,) = store.windows.claim(owner="a", at=T0, limit=1, streams=["mine"])
    (theirs,) = store.windows.claim(owner="b", at=T0, limit=1, streams=["theirs"])
    assert store.windows.renew([mine.id, theirs.id], owner="a", at=T0 + 5 * S) == [mine.id]
    leases = {(lease.stream, lease.owner): lease.heartbeat_at for lease in store.windows.leases()}
    assert leases == {("mine", "a"): T0 + 5 * S, ("theirs", "b"): T0}


def test_an_expired_lease_goes_back_to_the_queue_and_is_claimed_again(store: Store) -> None:
    store.windows.enqueue(rows("dead", 0, 1) + rows("live", 0), at=T0)
    (lost,) = store.windows.claim(owner="dead", at=T0, limit=1, streams=["dead"])
    (kept,) = store.windows.claim(owner="alive", at=T0, limit=1, streams=["live"])
    store.windows.renew([kept.id], owner="alive", at=T0 + 50 * S)
    # The dead replica's stream stays blocked while its lease lasts.
    assert store.windows.claim(owner="alive", at=T0 + 50 * S, limit=5, streams=["dead"]) == []
    expired = store.windows.expire(before=T0 + 30 * S)
    assert [(lease.id, lease.owner) for lease in expired] == [(lost.id, "dead")]
    assert store.windows.expire(before=T0 + 30 * S) == []  # once
    (again,) = store.windows.claim(owner="alive", at=T0 + 60 * S, limit=5, streams=["dead"])
    assert again.id == lost.id and again.window.key == "rows:0-100"  # still first in line
    assert store.windows.finish(lost.id, owner="dead") is False  # the dead one lost it
    assert store.windows.renew([lost.id], owner="dead", at=T0 + 61 * S) == []


def test_release_puts_a_window_back_and_release_all_frees_every_lease(store: Store) -> None:
    store.windows.enqueue(rows("a", 0) + rows("b", 0), at=T0)
    (first,) = store.windows.claim(owner="x", at=T0, limit=1, streams=["a"])
    assert store.windows.release(first.id, owner="y") is False
    assert store.windows.release(first.id, owner="x") is True
    store.windows.claim(owner="x", at=T0, limit=5, streams=["a", "b"])
    assert len(store.windows.release_all()) == 2
    assert store.windows.leases() == []


@pytest.fixture
def pg_store() -> Iterator[Store]:
    for url in _postgres_schema_url():
        store = Store(url)
        store.upgrade()
        yield store
        store.close()


@pytest.mark.integration
def test_two_claimers_skip_each_others_locked_windows(pg_store: Store) -> None:
    """While one replica's claim transaction holds a stream's window, another's claim
    skips it instead of waiting (``FOR UPDATE SKIP LOCKED``), and does not take the next
    window of that stream either: it is queued behind a window not yet judged."""
    store = pg_store
    store.windows.enqueue(rows("wine", 0, 1) + rows("beer", 0), at=T0)
    engine = create_engine(store.engine.url, pool_size=2)
    try:
        with engine.begin() as a, engine.begin() as b:
            mine = sql.claim(a, owner="a", at=T0, limit=1, streams=["wine", "beer"])
            theirs = sql.claim(b, owner="b", at=T0, limit=5, streams=["wine", "beer"])
            assert [(c.window.stream, c.window.key) for c in mine] == [("wine", "rows:0-100")]
            assert [(c.window.stream, c.window.key) for c in theirs] == [("beer", "rows:0-100")]
    finally:
        engine.dispose()
    owners = {(lease.stream, lease.owner) for lease in store.windows.leases()}
    assert owners == {("wine", "a"), ("beer", "b")}
