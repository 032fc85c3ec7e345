"""This replica's window worker: claims queued stream windows and keeps their leases.

Every replica (the leader too) claims queued windows of the streams it has configured
(``store.windows.claim``, ``FOR UPDATE SKIP LOCKED``) whenever it is woken (its leader
queued some, a window of its was judged) or every ``[store] claim_every``, at most
``[store] max_runs`` at once and one per stream, and hands each to
``StreamJobs.judge``. Every ``[store] heartbeat_every`` it renews the leases it holds
and puts the windows whose lease expired (no heartbeat for ``stale_after``: their
replica died) back in the queue, but only once the store has answered for
``stale_after`` without a break, so live owners have renewed theirs first: start-up
recovery never touches another live replica's windows. A single-instance store (SQLite)
frees every window lease at start instead: the file lock proves their holder dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from monitor.clock import Clock
from monitor.config import StoreConfig
from monitor.errors import StoreError, StoreUnavailable
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasWindows
from monitor.store.window_queue import ClaimedWindow

logger = logging.getLogger(__name__)

Judge = Callable[[ClaimedWindow], Coroutine[Any, Any, bool]]


class WindowWorker:
    """Claims queued windows for this replica, hands each to ``judge``, renews and
    expires leases."""

    def __init__(
        self,
        store: HasWindows,
        config: StoreConfig,
        *,
        owner: str,
        streams: Sequence[str],
        clock: Clock,
        outage: StoreOutage,
        judge: Judge,
        exclusive: bool,
    ) -> None:
        self._store = store
        self._config = config
        self._owner = owner
        self._streams = list(streams)
        self._clock = clock
        self._outage = outage
        self._judge = judge
        self._exclusive = exclusive
        self._woken = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._held: set[int] = set()
        self._beat_at = 0.0

    @property
    def held(self) -> list[int]:
        """The windows this replica holds a lease on (their leases are renewed)."""
        return sorted(self._held)

    def wake(self) -> None:
        """Look for queued windows now (call on the event loop)."""
        self._woken.set()

    async def run(self) -> None:
        """Claim and judge queued windows until cancelled."""
        if not self._streams:
            return
        if self._exclusive:
            await self._free_all()
        every = self._config.claim_every.total_seconds()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), every)
            self._woken.clear()
            if time.monotonic() - self._beat_at >= self._config.heartbeat_every.total_seconds():
                self._beat_at = time.monotonic()
                await self._beat()
            if self._outage.down or len(self._running) >= self._config.max_runs:
                continue
            await self._claim(self._config.max_runs - len(self._running))

    async def _free_all(self) -> None:
        try:
            freed = await asyncio.to_thread(self._store.windows.release_all, streams=None)
        except StoreError as exc:
            logger.warning("freeing the window leases of a previous daemon failed: %s", exc)
            return
        if freed:
            logger.warning("%d window(s) leased by a daemon that stopped: queued again", len(freed))

    async def _beat(self) -> None:
        """Renew the leases held here; put expired ones back in the queue."""
        now = self._clock()
        stale_after = self._config.stale_after
        try:
            if self._held:
                await asyncio.to_thread(
                    self._store.windows.renew, self.held, owner=self._owner, at=now
                )
            if self._outage.down or self._outage.up_for(now) < stale_after:
                return
            expired = await asyncio.to_thread(self._store.windows.expire, before=now - stale_after)
        except StoreUnavailable as exc:
            self._outage.failed(exc)
            return
        except StoreError as exc:
            logger.warning("renewing window leases failed: %s", exc)
            return
        for lease in expired:
            logger.warning(
                "stream %s: window %s: lease of %s expired (no heartbeat for %s): queued again",
                lease.stream,
                lease.key,
                lease.owner,
                stale_after,
            )
        if expired:
            self._woken.set()

    async def _claim(self, limit: int) -> None:
        try:
            claimed = await asyncio.to_thread(
                self._store.windows.claim,
                owner=self._owner,
                at=self._clock(),
                limit=limit,
                streams=self._streams,
            )
        except StoreUnavailable as exc:
            self._outage.failed(exc)
            return
        except StoreError as exc:
            logger.warning("claiming queued windows failed: %s", exc)
            return
        for work in claimed:
            self._held.add(work.id)
            logger.debug("claimed window %s of stream %s", work.window.key, work.window.stream)
            task = asyncio.get_running_loop().create_task(
                self._work(work), name=f"window {work.window.key} of {work.window.stream}"
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _work(self, work: ClaimedWindow) -> None:
        try:
            judged = await self._judge(work)
        finally:
            self._held.discard(work.id)
        if judged:
            self.wake()  # the stream's next window may be claimable now
