"""The leader's jobs on streams: judge their windows and hand on what the judging finds.

``StreamJobs.drift_job`` (scheduled per stream, and once at start for ``run_at_start``)
judges every complete window after the stream's watermark, oldest first, and hands each
new drift report to the ``on_drift_report`` hooks (the alert rules of kinds ``drift`` and
``divergence`` first) and each window it scored to the ``performance`` rules before it
judges the next; then it re-scores the open windows whose labels arrived since, and joins
again those whose shadow records did. ``activity`` says when each stream last had data,
for the alert timer's ``stale`` rules.

It owns one ``StreamEvaluator`` per configured stream (``close()`` at shutdown). The
daemon (``monitor.daemon.lifecycle``) owns it, schedules its job and drains the job like
a run at shutdown.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from monitor.alerts.events import (
    StreamActivity,
    divergence_event,
    drift_event,
    performance_event,
)
from monitor.clock import Clock
from monitor.config import IngestSourceConfig, StreamConfig
from monitor.errors import StoreUnavailable
from monitor.metrics.streams import StreamMetrics
from monitor.notify.service import AlertService
from monitor.records import DriftReport, WindowPerformance
from monitor.runs.outage import StoreOutage
from monitor.store.parts import HasStreams
from monitor.streams.evaluate import Backlog, StreamEvaluator
from monitor.streams.windows import Window

logger = logging.getLogger(__name__)

DriftHook = Callable[[DriftReport], object]
"""Called with every new drift report (a coroutine function is awaited). The alerting
issue registers its rule engine here."""


class StreamJobs:
    """The drift job of every configured stream, run by the leader."""

    def __init__(
        self,
        streams: Sequence[StreamConfig],
        store: HasStreams,
        *,
        clock: Clock,
        alerts: AlertService,
        metrics: StreamMetrics,
        outage: StoreOutage,
        leading: Callable[[], bool],
        stopping: Callable[[], bool],
        inflight: set[asyncio.Task[object]],
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
        self._locks = {s.name: asyncio.Lock() for s in streams}
        self._evaluators = {s.name: StreamEvaluator(s, store, clock=clock) for s in streams}
        self.on_drift_report: list[DriftHook] = [self._alert_on_drift]

    async def drift_job(self, name: str) -> None:
        """Judge every complete window of the stream after its watermark, oldest first,
        each in a worker thread (the statistics and the reads block), and hand each new
        report to every ``on_drift_report`` hook before judging the next: alerts follow
        window order. The leader's job."""
        if not self._leading():
            return
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            # One judging of a stream at a time: the job run at start and the scheduler's
            # next firing would otherwise both read the backlog before either stored a
            # report, and a stream without a watermark starts at its latest complete
            # window, so the later one would skip the windows in between.
            async with self._locks[name]:
                backlog = await asyncio.to_thread(self._backlog, name)
                for window in backlog.windows:
                    if self._stopping():
                        break  # the next start resumes at the watermark
                    report = await asyncio.to_thread(self._judge, name, window)
                    if report is None:
                        break  # another replica stored this window first: it judges the rest
                    await self._announce(report)
                    await self._announce_performance(
                        name, self._evaluators[name].performance.take()
                    )
                if not self._stopping():
                    # Labels that arrived since: re-score the open windows, finalise due ones.
                    changed = await asyncio.to_thread(self._evaluators[name].performance.refresh)
                    await self._announce_performance(name, changed)
                    # Shadow records that arrived since: join the open windows again.
                    joined = await asyncio.to_thread(self._evaluators[name].shadow.refresh)
                    await self._announce_shadow(joined)
        except StoreUnavailable as exc:
            self._outage.failed(exc)
        except asyncio.CancelledError:
            if not self._stopping():
                raise
            # Cancelled at the end of the shutdown grace: the next start resumes at the
            # watermark. Not a job error for the scheduler to log with a traceback.
        except Exception:
            logger.exception("stream %s: judging its windows failed", name)
        finally:
            self._inflight.discard(task)

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

    def _backlog(self, name: str) -> Backlog:
        evaluator = self._evaluators[name]
        source = evaluator.stream.source
        if isinstance(source, IngestSourceConfig):
            self._store.streams.delete_batches_before(name, self._clock() - source.retention)
        backlog = evaluator.backlog()
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
