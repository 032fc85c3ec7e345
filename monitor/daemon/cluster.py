"""This replica's part in a cluster of daemons sharing one store.

- ``Membership``: the replica's name (``host:pid``), whether it leads (``Leadership`` on
  PostgreSQL; on SQLite the one daemon the file lock admits always leads), and, every
  ``[store] heartbeat_every``, its ``replicas`` row refreshed and the leases it holds
  renewed in one statement each;
- ``Worker``: claims queued runs (every replica, the leader too) whenever it is woken
  (this replica queued one, a run of its ended) or every ``[store] claim_every``, at most
  ``[store] max_runs`` at once, and hands each to the daemon.

Only the leader schedules (suite slots, stream windows, the alert timer); every replica
serves the API, claims queued work and delivers alerts (the outbox is claimed with
``FOR UPDATE SKIP LOCKED`` already).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from monitor.clock import Clock
from monitor.config import StoreConfig
from monitor.daemon.leader import Leadership, SingleInstance, is_postgresql
from monitor.errors import StoreError, StoreUnavailable
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasQueue
from monitor.store.queue import Claimed, Replica

logger = logging.getLogger(__name__)


def replica_name() -> str:
    """``host:pid``: unique among live processes, and says where to look."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Membership:
    """Leadership and presence of this replica. ``acquire()`` before the store is
    migrated (SQLite refuses a second daemon there), ``start()`` once it is, ``aclose()``
    at the end."""

    def __init__(
        self,
        config: StoreConfig,
        store: HasQueue,
        *,
        version: str,
        clock: Clock,
        outage: StoreOutage,
        on_change: Callable[[bool], object],
        held: Callable[[], list[int]],
    ) -> None:
        self.name = replica_name()
        self._held = held
        self._config = config
        self._store = store
        self._version = version
        self._clock = clock
        self._outage = outage
        self._on_change = on_change
        self._started_at = clock()
        url = config.effective_url
        self._single = None if is_postgresql(url) else SingleInstance(url)
        self._leadership = (
            Leadership(url, every=config.election_every, on_change=self._changed)
            if is_postgresql(url)
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.leading = False

    @property
    def won_at_start(self) -> bool:
        """Whether this replica led from the start (SQLite: always)."""
        return self._leadership is None or self._leadership.won_at_start

    def acquire(self) -> None:
        """SQLite: take the single-instance lock (``StartupError`` if held)."""
        if self._single is not None:
            self._single.acquire()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._presence(), name="replica presence"))
        if self._leadership is not None:
            self._tasks.append(loop.create_task(self._leadership.run(), name="leader election"))
        else:
            self._changed(True)

    def _changed(self, leading: bool) -> None:
        self.leading = leading
        self._on_change(leading)
        if not self._closing:  # say so now, not at the next beat
            task = asyncio.get_running_loop().create_task(self._announce(), name="announce")
            self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def _presence(self) -> None:
        every = self._config.heartbeat_every.total_seconds()
        while True:
            await self._announce()
            await asyncio.sleep(every)

    async def _announce(self) -> None:
        now = self._clock()
        try:
            await asyncio.to_thread(self._store.queue.announce, self._row(now))
            held = self._held()
            if held:
                await asyncio.to_thread(self._store.queue.renew, held, owner=self.name, at=now)
            if self.leading:
                await asyncio.to_thread(self._forget, now)
        except StoreUnavailable as exc:
            self._outage.failed(exc)
        except StoreError as exc:
            logger.warning("replica %s: announcing itself failed: %s", self.name, exc)
        else:
            self._outage.answered()

    def _forget(self, now: datetime) -> None:
        """Delete the rows of replicas not seen for ``stale_after`` (the leader's job)."""
        queue = self._store.queue
        gone = [r.name for r in queue.replicas() if r.seen_at < now - self._config.stale_after]
        queue.forget(gone)

    def _row(self, now: datetime) -> Replica:
        host, _, pid = self.name.rpartition(":")
        return Replica(
            self.name, host, int(pid), self._version, self._started_at, now, self.leading
        )

    def state(self) -> dict[str, object]:
        """What ``/readyz`` says about this replica."""
        return {"replica": self.name, "leader": self.leading}

    async def aclose(self) -> None:
        """Stop leading (the lock's session ends) and withdraw from ``replicas``."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.leading = False
        with contextlib.suppress(StoreError):
            await asyncio.to_thread(self._store.queue.withdraw, self.name)
        if self._single is not None:
            self._single.release()


class Worker:
    """Claims queued runs for this replica and hands each to ``execute``."""

    def __init__(
        self,
        store: HasQueue,
        config: StoreConfig,
        *,
        owner: str,
        clock: Clock,
        outage: StoreOutage,
        execute: Callable[[Claimed], Coroutine[Any, Any, None]],
    ) -> None:
        self._store = store
        self._every = config.claim_every.total_seconds()
        self._max_runs = config.max_runs
        self._owner = owner
        self._clock = clock
        self._outage = outage
        self._execute = execute
        self._woken = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._held: set[int] = set()

    @property
    def held(self) -> list[int]:
        """The runs this replica holds a lease on (their leases are renewed)."""
        return sorted(self._held)

    def hold(self, run_id: int) -> None:
        self._held.add(run_id)

    def let_go(self, run_id: int) -> None:
        self._held.discard(run_id)

    def wake(self) -> None:
        """Look for queued runs now (call on the event loop)."""
        self._woken.set()

    async def run(self) -> None:
        """Claim and start queued runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._every)
            self._woken.clear()
            if self._outage.down or len(self._running) >= self._max_runs:
                continue
            await self._claim(self._max_runs - len(self._running))

    async def _claim(self, limit: int) -> None:
        try:
            claimed = await asyncio.to_thread(
                self._store.queue.claim, owner=self._owner, at=self._clock(), limit=limit
            )
        except StoreUnavailable as exc:
            self._outage.failed(exc)
            return
        except StoreError as exc:
            logger.warning("claiming queued runs failed: %s", exc)
            return
        for work in claimed:
            self._held.add(work.id)
            logger.info(
                "claimed run %d (%s x %s, %s)", work.id, work.suite, work.model, work.trigger
            )
            task = asyncio.get_running_loop().create_task(
                self._execute(work), name=f"run {work.id} ({work.trigger})"
            )
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.wake()  # the next run of its suite x model may be claimable now
