"""Leader election and the pure parts of scheduling across replicas: the advisory lock key
per database and schema, one leader per store on PostgreSQL (handed over when its session
ends), the SQLite single-instance lock, and schedule slots every replica agrees on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from monitor.config import ScheduleConfig
from monitor.config.schedules import slot_at, slots
from monitor.daemon.leader import SESSION_KEEPALIVE, Leadership, SingleInstance, lock_key
from monitor.errors import StartupError
from tests.servers import MonitorProcess, deadline, until
from tests.store.conftest import _postgres_schema_url

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_lock_keys_differ_per_database_and_schema_and_fit_a_bigint() -> None:
    keys = {lock_key(db, schema) for db in ("a", "b") for schema in ("public", "t_1")}
    assert len(keys) == 4
    assert lock_key("a", "public") == lock_key("a", "public")
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key("ab", "c") != lock_key("a", "bc")  # the separator counts


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param(
            ScheduleConfig(every="2s"),
            [T0 + timedelta(seconds=s) for s in (2, 4, 6)],
            id="interval-on-the-epoch-grid",
        ),
        pytest.param(
            ScheduleConfig(every="2s", jitter="1s"),
            [T0 + timedelta(seconds=s) for s in (2, 4, 6)],
            id="jitter-does-not-move-slots",
        ),
        pytest.param(
            ScheduleConfig(cron="*/5 * * * *"),
            [T0 + timedelta(minutes=m) for m in (5,)],
            id="cron",
        ),
    ],
)
def test_slots_are_the_same_for_every_replica(
    schedule: ScheduleConfig, expected: list[datetime]
) -> None:
    until_at = T0 + timedelta(seconds=6) if schedule.every else T0 + timedelta(minutes=9)
    assert list(slots(schedule, after=T0, until=until_at)) == expected


def test_a_firing_belongs_to_the_newest_slot_before_it() -> None:
    schedule = ScheduleConfig(every="2s")
    late = T0 + timedelta(seconds=5, milliseconds=300)
    assert slot_at(schedule, late, lookback=timedelta(seconds=10)) == T0 + timedelta(seconds=4)
    hourly = ScheduleConfig(every="1h")
    assert slot_at(hourly, late, lookback=timedelta(seconds=1)) == late  # none within


def test_a_second_daemon_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'monitor.db'}"
    first = SingleInstance(url)
    first.acquire()
    try:
        with pytest.raises(StartupError, match=r"in use by another monitor daemon \(pid \d+\)"):
            SingleInstance(url).acquire()
    finally:
        first.release()
    again = SingleInstance(url)
    again.acquire()  # released with its holder
    again.release()
    SingleInstance("sqlite://").acquire()  # in memory: nothing to share


@pytest.mark.integration
def test_a_second_monitor_run_on_one_sqlite_file_exits_3(tmp_path: Path) -> None:
    """Two real ``monitor run`` processes on one SQLite store: the second refuses to
    start with the message and exit code docs/deploy.md gives, the first serves on."""
    database = tmp_path / "data" / "monitor.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[server]\nport = 0\n[store]\nurl = "sqlite:///{database}"\n')
    first = MonitorProcess("run", "-c", str(config))
    try:
        api = first.wait_for_line(r"HTTP API on (http://127\.0\.0\.1:\d+)", timeout=60).group(1)
        second = MonitorProcess("run", "-c", str(config))
        try:
            assert second.proc.wait(timeout=deadline(60)) == 3, second.output()
        finally:
            second.stop()
        expected = (
            f"store sqlite:///{database} is in use by another monitor daemon "
            f"(pid {first.proc.pid}): SQLite serves one daemon only; to run several replicas, "
            "give them a PostgreSQL [store] url"
        )
        assert expected in second.output(), second.output()
        assert "HTTP API on" not in second.output()
        assert httpx.get(f"{api}/readyz", timeout=deadline(5)).status_code == 200
        assert first.proc.poll() is None
    finally:
        first.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.fixture
def other_pg_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@pytest.mark.integration
def test_the_election_session_sets_its_own_tcp_keepalive(pg_url: str) -> None:
    """A leader whose host dies never closes its session: the server's keepalive, set by
    the session itself, bounds how long the lock outlives it."""
    leadership = Leadership(pg_url, every=timedelta(seconds=1), on_change=lambda v: None)
    connection = leadership._connect()
    try:
        shown = {
            name: connection.execute(text(f"SHOW {name}")).scalar() for name in SESSION_KEEPALIVE
        }
        assert shown == {name: str(value) for name, value in SESSION_KEEPALIVE.items()}
    finally:
        leadership._close()


@pytest.mark.integration
async def test_one_leader_per_store_handed_over_when_its_session_ends(
    pg_url: str, other_pg_url: str
) -> None:
    # The leader's check must answer within ``every``: scaled, so a loaded runner's slow
    # SELECT 1 does not cost the leadership in the middle of the handover.
    every = timedelta(seconds=deadline(0.25))
    changes: list[tuple[str, bool]] = []
    a = Leadership(pg_url, every=every, on_change=lambda v: changes.append(("a", v)))
    b = Leadership(pg_url, every=every, on_change=lambda v: changes.append(("b", v)))
    tasks = [asyncio.create_task(a.run())]

    async def leading(who: Leadership) -> bool:
        return who.leading

    try:
        await until(lambda: leading(a), timeout=10, what="a to lead")
        tasks.append(asyncio.create_task(b.run()))
        await asyncio.sleep(5 * every.total_seconds())  # b tries about five times
        assert not b.leading and a.won_at_start
        tasks[0].cancel()  # a stops: its session, and the lock, end
        await until(lambda: leading(b), timeout=10, what="b to take over")
        assert not b.won_at_start
        assert changes == [("a", True), ("a", False), ("b", True)]
        # A store in another schema of the same database elects its own leader.
        c = Leadership(other_pg_url, every=every, on_change=lambda v: None)
        tasks.append(asyncio.create_task(c.run()))
        await until(lambda: leading(c), timeout=10, what="the other schema's leader")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
