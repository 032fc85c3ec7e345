"""The heartbeat of the runs a process owns: while a run is queued or running here, its
``heartbeat_at`` is refreshed every ``[store] heartbeat_every``. Any replica's sweep
finishes a run whose heartbeat is older than ``stale_after`` as ``interrupted``, so a run
whose process died is finished within about ``stale_after`` without waiting for a restart,
and a live run, whatever replica owns it, is never touched.

A failed refresh is not retried: the next beat is the retry. It is reported to the
process's ``StoreOutage``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

from monitor.clock import Clock, utc_now
from monitor.errors import StoreError, StoreUnavailable
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasRuns

logger = logging.getLogger(__name__)


class Heartbeats:
    """Run ids held by this process, refreshed in one statement per beat. ``hold`` and
    ``release`` nest (a queued API run is held by the daemon and, once started, by the
    runner too). The beating task runs while anything is held."""

    def __init__(
        self,
        store: HasRuns,
        *,
        every: timedelta = timedelta(seconds=10),
        clock: Clock = utc_now,
        outage: StoreOutage | None = None,
    ) -> None:
        self._store = store
        self._every = every.total_seconds()
        self._clock = clock
        self._outage = outage
        self._held: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> list[int]:
        return sorted(self._held)

    def hold(self, run_ids: Iterable[int]) -> None:
        """Keep these runs alive from now on (call on the event loop)."""
        self._held.update(run_ids)
        if self._held and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="heartbeats")

    def release(self, run_ids: Iterable[int]) -> None:
        """Stop keeping these runs alive (once per ``hold``)."""
        self._held.subtract(run_ids)
        self._held = +self._held  # drop ids at zero
        if not self._held and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _beat(self) -> None:
        while self._held:
            await asyncio.sleep(self._every)
            ids = self.held
            if ids:
                await self.beat(ids)

    async def beat(self, run_ids: list[int]) -> None:
        """Refresh these runs' heartbeat now."""
        try:
            await asyncio.to_thread(self._store.runs.touch_runs, run_ids, at=self._clock())
        except StoreUnavailable as exc:
            if self._outage is not None:
                self._outage.failed(exc)
            logger.debug("heartbeat of runs %s failed: %s", run_ids, exc)
        except StoreError as exc:
            logger.warning("heartbeat of runs %s failed: %s", run_ids, exc)
        else:
            if self._outage is not None:
                self._outage.answered()

    async def aclose(self) -> None:
        """Stop beating (the runs' owner is going away)."""
        self._held.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
