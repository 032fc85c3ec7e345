"""What the daemon does when the store stops answering, and about runs whose process died.

- ``outage``: the store's state as this process sees it, logged once each way;
- ``heartbeats``: the runs the runner holds keep a fresh ``heartbeat_at`` (the daemon
  renews the leases of the runs it claimed besides, ``monitor.daemon.cluster``);
- ``sweep`` (every ``[store] heartbeat_every``): hands on the work of every lease whose
  heartbeat is older than ``stale_after``, whichever replica held it (the queue's
  ``expire``: a claimed run goes back to the queue, a running scheduled run is
  interrupted and its slot queued again, a finished run not yet judged is judged here),
  but only once the store has answered for ``stale_after`` without a break (after an
  outage, and at start), so live owners have refreshed theirs first: start-up recovery
  never touches a live replica's work; while the store does not answer it only checks
  whether it answers again;
- slots that fall due while the store does not answer are ``keep``-ed and, once it
  answers, queued oldest first at their slot's time, if still within their suite's
  ``misfire_grace``, else counted as skipped;
- ``when_store_answers`` retries what follows a run (alert rules, its verdict) through an
  outage that began as it finished.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from prometheus_client import CollectorRegistry

from monitor.clock import Clock
from monitor.config import AnyModelConfig, Config, SuiteConfig, config_hash
from monitor.daemon.slots import MissedSlots
from monitor.durations import format_duration
from monitor.errors import StoreError, StoreUnavailable
from monitor.metrics.schedules import ScheduleMetrics
from monitor.runs.durability import retry_delay
from monitor.runs.heartbeat import Heartbeats
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasQueue, HasRuns
from monitor.store.queue import Expired

logger = logging.getLogger(__name__)

T = TypeVar("T")

CRASHED = (
    "the process running it stopped unexpectedly: no heartbeat for longer than"
    " [store] stale_after (found by a sweep)"
)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Start a task the daemon tracks (drained, then cancelled, at shutdown)."""
Adopt = Callable[[list[int]], None]
"""Judge finished runs whose replica died before judging them (now leased here)."""


class RecoveryStores(HasQueue, HasRuns, Protocol):
    """What recovery uses of the store: the queue (the sweep), the runs (heartbeats) and
    a cheap query that tells whether the store answers."""

    def current_revision(self) -> str | None: ...


class StoreRecovery:
    """The outage, the heartbeats, the sweep and the kept slots of one daemon."""

    def __init__(
        self,
        config: Config,
        store: RecoveryStores,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        spawn: Spawn,
        owner: str,
        wake: Callable[[], None],
        adopt: Adopt,
    ) -> None:
        self._config = config.store
        self._store = store
        self._clock = clock
        self._spawn = spawn
        self._owner = owner
        self._wake = wake
        self._adopt = adopt
        self.outage = StoreOutage(clock=clock)
        self.outage.on_recovered.append(self._store_back)
        self.heartbeats = Heartbeats(
            store, every=config.store.heartbeat_every, clock=clock, outage=self.outage
        )
        self.metrics = ScheduleMetrics(registry, pairs=[(s.name, m.name) for s, m in config.jobs()])
        self._missed = MissedSlots(
            lambda suite, model: self.skip(suite, model, "store_unavailable")
        )

    def keep(self, suite: SuiteConfig, model: AnyModelConfig, at: datetime) -> None:
        """Keep a slot due at ``at`` for when the store answers."""
        self._missed.keep(suite, model, at)

    def skip(self, suite: SuiteConfig, model: AnyModelConfig, reason: str) -> None:
        self.metrics.skipped(suite.name, model.name, reason)

    def on_missed(self, event: JobEvent) -> None:
        """APScheduler skipped a suite's slot: too late, or its last run still going."""
        suite, slash, model = event.job_id.partition("/")
        if slash and ":" not in event.job_id:
            reason = "busy" if event.code == EVENT_JOB_MAX_INSTANCES else "misfire"
            self.metrics.skipped(suite, model, reason)

    async def sweep(self) -> None:
        """Hand on the work of expired leases (see the module docstring), once the store
        has answered for ``stale_after`` without a break; while it does not, only check
        whether it answers again (which queues the kept slots)."""
        stale_after = self._config.stale_after
        now = self._clock()
        try:
            if self.outage.down:
                await asyncio.to_thread(self._store.current_revision)
            elif self.outage.up_for(now) >= stale_after:
                expired = await asyncio.to_thread(
                    self._store.queue.expire,
                    before=now - stale_after,
                    at=now,
                    owner=self._owner,
                    reason=CRASHED,
                )
                self._report(expired, stale_after)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            return
        except StoreError as exc:
            logger.warning("sweep for abandoned runs failed: %s", exc)
            return
        self.outage.answered()

    def _report(self, expired: Expired, stale_after: timedelta) -> None:
        if not expired:
            return
        logger.warning(
            "sweep: leases without a heartbeat for %s: interrupted %s (re-queued as %s),"
            " returned to the queue %s, finished runs to judge here %s",
            format_duration(stale_after),
            expired.interrupted or "none",
            expired.requeued or "none",
            expired.returned or "none",
            expired.adopted or "none",
        )
        if expired.adopted:
            self._adopt(expired.adopted)
        if expired.requeued or expired.returned:
            self._wake()

    async def when_store_answers(self, step: Callable[[], Awaitable[T]]) -> T:
        """``step()``, tried again with back-off while the store does not answer, for up to
        ``[store] retry_for``: what follows a run (its alert rules, its verdict) is not
        lost to an outage that began as it finished. Then ``StoreUnavailable``."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await step()
            except StoreUnavailable as exc:
                self.outage.failed(exc)
                if time.monotonic() - started >= self._config.retry_for.total_seconds():
                    raise
            attempt += 1
            await asyncio.sleep(retry_delay(attempt, jitter=random.uniform(0.5, 1.0)))

    def _store_back(self) -> None:
        """The store answers again: create the slots kept meanwhile (in a task: this runs
        inside whatever noticed)."""
        if len(self._missed):
            self._spawn(self._catch_up(), "missed slots")

    async def _catch_up(self) -> None:
        """Queue every kept slot still within its suite's ``misfire_grace``, oldest
        first, as a run created at its slot's time; count the others as skipped."""
        due, late = self._missed.take(self._clock())
        for suite, model, _ in late:
            self.skip(suite, model, "store_unavailable")
        created = 0
        for index, (suite, model, at) in enumerate(due):
            try:
                queued = await asyncio.to_thread(self._queue_slot, suite, model, at)
            except StoreUnavailable as exc:
                self.outage.failed(exc)
                for slot in due[index:]:
                    self._missed.keep(*slot)
                break
            created += isinstance(queued, int)
        self._wake()
        logger.info(
            "slots due while the store did not answer: %d created, %d skipped (past misfire_grace)",
            created,
            len(late),
        )

    def _queue_slot(self, suite: SuiteConfig, model: AnyModelConfig, at: datetime) -> int | str:
        return self._store.queue.enqueue_slot(
            suite=suite.name,
            model=model.name,
            slot_at=at,
            config_hash=config_hash(suite, model),
            at=self._clock(),
            only_if_idle=False,
        )
