"""The stream jobs: the leader queues each stream's due windows, every replica judges them.

``StreamJobs.drift_job`` (the leader's, scheduled per stream, and once at start for
``run_at_start``) queues every complete window after the stream's watermark (the newest
queued window, else the newest report), oldest first, as a row of the window queue
(``store.windows``), and wakes this replica's window worker; then it re-scores the open
windows whose labels arrived since, and joins again those whose shadow records did.
Those two passes stay the leader's, serialised per stream: they are one pass over every
open window of the stream, cheap when nothing arrived, not a unit of work of one window.

Every replica (the leader too) claims queued windows (``monitor.daemon.windows``) and
hands each to ``StreamJobs.judge``: the window is judged with this replica's own
``StreamEvaluator`` (the reference profile and calibration come from the store), its
report stored, handed to the ``on_drift_report`` hooks (the alert rules of kinds
``drift`` and ``divergence`` first) and the window's performance to the
``performance`` rules, and only then is the window's row deleted: a stream's next window
is claimable once this one is judged, so alerts follow window order. A window whose
report was already stored (its replica died before deleting the row) is announced from
the stored report, not judged again. ``activity`` says when each stream last had data,
for the alert timer's ``stale`` rules.

It owns one ``StreamEvaluator`` per configured stream (``close()`` at shutdown). The
daemon (``monitor.daemon.lifecycle``) owns it, schedules its job and drains its tasks
like a run at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from monitor.alerts.events import (
    StreamActivity,
    divergence_event,
    drift_event,
    performance_event,
)
from monitor.clock import Clock
from monitor.config import IngestSourceConfig, StreamConfig
from monitor.daemon.inflight import tracked
from monitor.errors import StoreError, StoreUnavailable
from monitor.metrics.streams import StreamMetrics
from monitor.notify.service import AlertService
from monitor.records import DriftReport, WindowPerformance
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasStreams, HasWindows
from monitor.store.window_queue import ClaimedWindow, DueWindow
from monitor.streams.evaluate import Backlog, StreamEvaluator
from monitor.streams.windows import Window, position

logger = logging.getLogger(__name__)


class StreamStores(HasStreams, HasWindows, Protocol):
    """What the stream jobs use of the store: the streams and the window queue."""


DriftHook = Callable[[DriftReport], object]
"""Called with every new drift report (a coroutine function is awaited). The alerting
issue registers its rule engine here."""


class StreamJobs:
    """The drift job of every configured stream (the leader's) and the judging of the
    windows this replica claimed."""

    def __init__(
        self,
        streams: Sequence[StreamConfig],
        store: StreamStores,
        *,
        clock: Clock,
        alerts: AlertService,
        metrics: StreamMetrics,
        outage: StoreOutage,
        leading: Callable[[], bool],
        stopping: Callable[[], bool],
        inflight: set[asyncio.Task[object]],
        owner: str = "",
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._names = [s.name for s in streams]
        self._store = store
        self._clock = clock
        self._alerts = alerts
        self._metrics = metrics
        self._outage = outage
        self._leading = leading
        self._stopping = stopping
        self._inflight = inflight
        self._owner = owner
        self.wake = wake
        """Wake this replica's window worker (windows were queued); set by the daemon."""
        self._locks = {s.name: asyncio.Lock() for s in streams}
        self._evaluators = {s.name: StreamEvaluator(s, store, clock=clock) for s in streams}
        self.on_drift_report: list[DriftHook] = [self._alert_on_drift]

    @property
    def names(self) -> list[str]:
        """The streams this replica has configured (the ones it claims windows of)."""
        return list(self._names)

    async def drift_job(self, name: str) -> None:
        """Queue every complete window of the stream after its watermark, oldest first,
        and wake the window worker; then re-score the open windows whose labels arrived
        since and join again those whose shadow records did. The leader's job."""
        if not self._leading():
            return
        with tracked(self._inflight):
            try:
                # One pass of a stream at a time on this replica: the job run at start and the
                # scheduler's next firing, and the judging of the stream's windows here.
                async with self._locks[name]:
                    queued = await asyncio.to_thread(self._queue_due, name)
                if queued:
                    self.wake()
                if not self._stopping():
                    async with self._locks[name]:
                        await self._refresh(name)
            except StoreUnavailable as exc:
                self._outage.failed(exc)
            except asyncio.CancelledError:
                if not self._stopping():
                    raise
                # Cancelled at the end of the shutdown grace: the next start resumes at the
                # watermark. Not a job error for the scheduler to log with a traceback.
            except Exception:
                logger.exception("stream %s: queueing its windows failed", name)

    async def _refresh(self, name: str) -> None:
        evaluator = self._evaluators[name]
        # Labels that arrived since: re-score the open windows, finalise due ones.
        changed = await asyncio.to_thread(evaluator.performance.refresh)
        await self._announce_performance(name, changed)
        # Shadow records that arrived since: join the open windows again.
        joined = await asyncio.to_thread(evaluator.shadow.refresh)
        await self._announce_shadow(joined)

    async def judge(self, claimed: ClaimedWindow) -> bool:
        """Judge a window this replica claimed, announce its report and its performance,
        then delete its row; True if judged (or announced from a stored report). At
        shutdown, or when the store fails, the window goes back to the queue (or its
        lease expires) for another replica."""
        due = claimed.window
        with tracked(self._inflight):
            try:
                async with self._locks[due.stream]:
                    if self._stopping():
                        self._give_back(claimed)
                        return False
                    report, performance = await asyncio.to_thread(self._judge_claimed, claimed)
                    if report is not None:
                        await self._announce(report)
                        await self._announce_performance(due.stream, performance)
                await asyncio.to_thread(self._store.windows.finish, claimed.id, owner=self._owner)
                return True
            except asyncio.CancelledError:
                # Shut down: back to the queue now (synchronously: the task must not await);
                # if the store does not answer, the lease expires instead.
                self._give_back(claimed)
                if not self._stopping():
                    raise
                return False
            except StoreUnavailable as exc:
                self._outage.failed(exc)  # the lease is no longer renewed: it expires
                return False
            except Exception:
                logger.exception("stream %s: judging window %s failed", due.stream, due.key)
                return False

    def _give_back(self, claimed: ClaimedWindow) -> None:
        with contextlib.suppress(StoreError):
            self._store.windows.release(claimed.id, owner=self._owner)

    def _judge_claimed(
        self, claimed: ClaimedWindow
    ) -> tuple[DriftReport | None, list[WindowPerformance]]:
        """The claimed window's report and performance to announce: judged now, or
        stored before; nothing if this replica lost the lease meanwhile."""
        due = claimed.window
        window = Window(due.key, due.start, due.end, due.first_row, due.end_row)
        evaluator = self._evaluators[due.stream]
        evaluator.read_until(claimed.until)
        report = self._judge(due.stream, window)
        performance = evaluator.performance.take()
        # Only the lease's holder announces: a replica paused past its lease (another
        # took the window over) says nothing, whichever of the two stored the report.
        if not self._store.windows.renew([claimed.id], owner=self._owner, at=self._clock()):
            logger.warning(
                "stream %s: window %s: lease lost to another replica", due.stream, due.key
            )
            return None, []
        if report is not None:
            return report, performance
        # Stored before: by a replica that died before deleting the row (its hooks may
        # not have seen it), or by one of a version that judged windows itself.
        stored = self._store.streams.drift_report_for(due.stream, due.key)
        if stored is None:
            return None, []
        logger.info("stream %s: window %s was judged already", due.stream, due.key)
        if not evaluator.performance.enabled:
            return stored, []
        evaluator.performance.newest = due.key
        return stored, list(self._store.streams.performance_for(due.stream, [due.key]).values())

    def _queue_due(self, name: str) -> int:
        """Queue the stream's due windows; how many were new."""
        evaluator = self._evaluators[name]
        kind = "rows" if evaluator.stream.window.rows else "time"
        # The queue's newest window first, then the reports: a window judged and deleted
        # in between has its report stored by then, so it is never queued again.
        queued = self._store.windows.last_key(name, kind)
        backlog = self._backlog(name, queued)
        due = [
            DueWindow(name, w.key, position(w), w.start, w.end, w.first_row, w.end_row)
            for w in backlog.windows
        ]
        return len(self._store.windows.enqueue(due, at=self._clock()))

    def activity(self) -> list[StreamActivity]:
        """When each configured stream last had data: its newest ingested batch, or the
        end of its newest judged window with rows (file and SQL sources)."""
        last: dict[str, datetime | None] = dict.fromkeys(self._names)
        for count in self._store.streams.stream_counts():
            if count.stream in last:
                last[count.stream] = count.last_received_at
        for report in self._store.streams.latest_drift_reports():
            seen, end = last.get(report.stream), report.window_end
            if report.stream in last and report.n_rows > 0 and end and (seen is None or end > seen):
                last[report.stream] = end
        return [StreamActivity(name, at) for name, at in last.items()]

    def close(self) -> None:
        """Release what the evaluators hold (a SQL source's engine)."""
        for evaluator in self._evaluators.values():
            evaluator.close()

    def _backlog(self, name: str, queued: str | None) -> Backlog:
        evaluator = self._evaluators[name]
        source = evaluator.stream.source
        if isinstance(source, IngestSourceConfig):
            self._store.streams.delete_batches_before(name, self._clock() - source.retention)
        backlog = evaluator.backlog(queued=queued)
        self._metrics.windows_skipped(name, backlog.dropped)
        return backlog

    def _judge(self, name: str, window: Window) -> DriftReport | None:
        report = self._evaluators[name].evaluate(window)
        if report is not None:
            logger.info(
                "stream %s: window %s: %s, drift share %s",
                name,
                report.window_key,
                report.status,
                report.drift_share,
            )
        return report

    async def _announce(self, report: DriftReport) -> None:
        for hook in list(self.on_drift_report):
            try:
                outcome = hook(report)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("drift report hook %r failed", hook)

    async def _alert_on_drift(self, report: DriftReport) -> None:
        """Feed a new drift report to the alert rules of kind ``drift``."""
        event = drift_event(report)
        if event is not None:
            await self._alerts.handle(event)
        divergence = divergence_event(report)
        if divergence is not None:
            await self._alerts.handle(divergence)

    async def _announce_performance(self, name: str, rows: list[WindowPerformance]) -> None:
        """Hand each scored window to the alert rules (``performance``), oldest first."""
        newest = self._evaluators[name].performance.newest
        for row in rows:
            logger.info(
                "stream %s: window %s performance %s (%s, %d of %d labelled%s)",
                name,
                row.window_key,
                row.status,
                row.state,
                row.n_labelled,
                row.n_rows,
                ", worse than the " + (row.baseline or "") if row.worse else "",
            )
            event = performance_event(row, latest=row.window_key == newest)
            if event is not None:
                try:
                    await self._alerts.handle(event)
                except Exception:
                    logger.exception("stream %s: alerting on window performance failed", name)

    async def _announce_shadow(self, reports: list[DriftReport]) -> None:
        """Hand each window whose shadow comparison a later shadow record changed to the
        alert rules (``divergence``), oldest first; its drift was already announced."""
        for report in reports:
            event = divergence_event(report)
            if event is None:
                continue
            try:
                await self._alerts.handle(event)
            except Exception:
                logger.exception(
                    "stream %s: alerting on the shadow comparison failed", report.stream
                )
