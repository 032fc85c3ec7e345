"""The daemon: owns the lifecycle, the signals and the wiring of every component.

start:    take the SQLite file lock (one daemon per SQLite store), migrate the store,
          record the catalog, start the alert delivery worker, the HTTP server, the
          scheduler, then this replica's membership (leader election, presence) and its
          worker (``monitor.daemon.cluster``);
run:      until SIGTERM/SIGINT (or ``request_stop``). The leader alone acts on the
          scheduler's suite slots (each queued as a run), stream schedules (each due
          window queued, ``monitor.daemon.streams``), alert timer and the store's
          retention pass (``monitor.daemon.retention``);
          on winning the lead it first queues the slots missed since the last queued one
          (within ``misfire_grace``). Every replica claims queued runs (scheduled ones and
          those ``POST /v1/runs`` queued) and executes each (``monitor.daemon.work``): one run
          per suite x model at a time across the cluster, in slot order, each judged (its
          alert rules, its verdict) before the next is claimed; and claims queued
          stream windows and judges each (``monitor.daemon.windows``): one window per
          stream at a time, in window order. Every ``[store]
          heartbeat_every`` the leases held here are renewed and the sweep hands on the
          work of expired ones; slots due while the store does not answer are kept and
          queued when it does (``monitor.daemon.recovery``);
shutdown: stop scheduling and claiming, give in-flight runs and windows
          ``server.shutdown_grace`` to finish, cancel the rest (stored ``interrupted``; a
          claimed run not yet started, and a window not yet judged, go back to the queue
          for another replica), leave the cluster, stop the HTTP
          server, close the store.
A second signal skips the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from monitor import __version__
from monitor.api import create_app
from monitor.api.requests import SubmitRefused
from monitor.clock import Clock, utc_now
from monitor.config import AnyModelConfig, Config, IngestSourceConfig, SuiteConfig, config_hash
from monitor.config.schedules import build_trigger, slot_at, slots
from monitor.daemon import heap
from monitor.daemon.cluster import Membership, Worker, replica_name
from monitor.daemon.guard import HttpLimits
from monitor.daemon.inflight import tracked
from monitor.daemon.leader import is_postgresql
from monitor.daemon.recovery import StoreRecovery
from monitor.daemon.retention import Retention
from monitor.daemon.serving import EmbeddedServer, start_server
from monitor.daemon.slots import MAX_KEPT
from monitor.daemon.streams import StreamJobs
from monitor.daemon.windows import WindowWorker
from monitor.daemon.work import Work
from monitor.errors import StartupError, StoreBusy, StoreError, StoreUnavailable
from monitor.metrics.cluster import ReplicaCollector
from monitor.metrics.collector import StoreCollector
from monitor.metrics.instruments import RequestMetrics
from monitor.metrics.snapshot import SnapshotCollector
from monitor.metrics.streams import StreamMetrics
from monitor.notify.delivery import DeliveryWorker
from monitor.notify.service import AlertService
from monitor.records import CatalogModel, CatalogSuite
from monitor.runs.runner import Runner
from monitor.sinks import build_sink
from monitor.store import Store, redact_url

logger = logging.getLogger(__name__)

MAX_COUNTED = 10_000
"""Missed slots of one suite x model looked at when taking the lead (a cluster that was
down for long counts at most this many as skipped)."""


class Daemon:
    """One monitor process. ``serve()`` runs it until a stop is requested."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sink_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.store = store or Store(config.store.effective_url)
        self.registry = CollectorRegistry()
        caps = {s.name: s.max_exported_columns for s in config.streams}
        pairs = [(suite.name, model.name) for suite, model in config.jobs()]
        collector = StoreCollector(
            self.store,
            version=__version__,
            max_columns=caps,
            pairs=pairs,
            streams=[s.name for s in config.streams],
            adhoc_ttl=config.server.adhoc_series_ttl,
            clock=clock,
        )
        self.registry.register(SnapshotCollector(collector, self.store))
        self.request_metrics = RequestMetrics(
            self.registry,
            models=[m.name for m in config.models],
            adhoc_ttl=config.server.adhoc_series_ttl.total_seconds(),
        )
        self.stream_metrics = StreamMetrics(self.registry, streams=[s.name for s in config.streams])
        self._clock = clock
        self._started_work = False
        self.recovery = StoreRecovery(
            config,
            self.store,
            clock=clock,
            registry=self.registry,
            spawn=self._spawn,
            owner=replica_name(),
            wake=lambda: self.worker.wake(),
            adopt=lambda run_ids: self.work.adopt(run_ids),
        )
        self.outage = self.recovery.outage
        self.membership = Membership(
            config.store,
            self.store,
            version=__version__,
            clock=clock,
            outage=self.outage,
            on_change=self._on_leading,
            held=lambda: self.worker.held,
        )
        self.registry.register(ReplicaCollector(self.membership))
        self.worker = Worker(
            self.store,
            config.store,
            owner=self.membership.name,
            clock=clock,
            outage=self.outage,
            execute=lambda work: self.work.execute(work),
        )
        self._worker_task: asyncio.Task[None] | None = None
        self.heartbeats = self.recovery.heartbeats
        self._runner = Runner(
            self.store,
            transport=transport,
            clock=clock,
            observer=self.request_metrics,
            durability=config.store,
            heartbeats=self.heartbeats,
            outage=self.outage,
            models=config.models,
        )
        self.leader: Callable[[], bool] = lambda: self.membership.leading
        """Whether this replica does the work one replica does for all (retention): the
        leader of the cluster; a SQLite daemon always leads."""
        self.retention = Retention(
            config.store.retention, self.store, clock=clock, leader=lambda: self.leader()
        )
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._inflight: set[asyncio.Task[object]] = set()
        self._server: EmbeddedServer | None = None
        self._scheduler: AsyncIOScheduler | None = None
        alerts = config.alerts
        self.alerts = AlertService(
            alerts,
            self.store,
            public_url=config.server.public_url,
            clock=clock,
            on_enqueue=self._wake_delivery,
        )
        self._sink_transport = sink_transport
        self._delivery: DeliveryWorker | None = None
        self._delivery_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stream_jobs = StreamJobs(
            config.streams,
            self.store,
            clock=clock,
            alerts=self.alerts,
            metrics=self.stream_metrics,
            outage=self.outage,
            leading=lambda: self.membership.leading,
            stopping=self._stop.is_set,
            inflight=self._inflight,
            owner=self.membership.name,
            wake=lambda: self.window_worker.wake(),
        )
        self.window_worker = WindowWorker(
            self.store,
            config.store,
            owner=self.membership.name,
            streams=self.stream_jobs.names,
            clock=clock,
            outage=self.outage,
            judge=self.stream_jobs.judge,
            exclusive=not is_postgresql(config.store.effective_url),
        )
        self._window_task: asyncio.Task[None] | None = None
        self.on_drift_report = self.stream_jobs.on_drift_report
        """Called with every new drift report (``monitor.daemon.streams.DriftHook``)."""
        self.work = Work(
            config,
            self.store,
            runner=self._runner,
            alerts=self.alerts,
            recovery=self.recovery,
            worker=self.worker,
            owner=self.membership.name,
            clock=clock,
            spawn=self._spawn,
            stopping=self._stop.is_set,
            inflight=self._inflight,
        )

    @property
    def port(self) -> int:
        """The port the HTTP API listens on (useful when configured as 0)."""
        assert self._server is not None, "the daemon has not started"
        return self._server.port

    async def serve(self, *, started: asyncio.Event | None = None) -> None:
        """Start, run until asked to stop, then shut down gracefully."""
        handle_signals = threading.current_thread() is threading.main_thread()
        if handle_signals:
            self._install_signal_handlers()
        try:
            await self._start()
            if started is not None:
                started.set()
            warm_up = asyncio.create_task(self._warm_up(), name="preload compute libraries")
            try:
                await self._stop.wait()
            finally:
                warm_up.cancel()
        finally:
            await self._shutdown()
            if handle_signals:
                self._remove_signal_handlers()

    async def _warm_up(self) -> None:
        """Once ready, import what runs and verdicts compute with, then freeze again
        (``monitor.daemon.heap``): ``/readyz`` does not wait for it, the first run does
        not pay it, and full collections skip those objects."""
        await asyncio.to_thread(heap.preload)
        heap.freeze_startup_objects()

    def request_stop(self, *, force: bool = False) -> None:
        """Begin a graceful shutdown; with ``force``, cancel in-flight runs at once."""
        self._stop.set()
        if force:
            self._force.set()

    async def _start(self) -> None:
        store = self.store
        self.membership.acquire()
        try:
            await asyncio.to_thread(store.upgrade)
        except Exception as exc:
            raise StartupError(
                f"store {redact_url(self.config.store.effective_url)}: {type(exc).__name__}: {exc}"
            ) from None
        # Runs left queued or running by a crash are not marked here: another replica may
        # own them. The sweep hands them on once their lease has expired.
        self.outage.up_since = self._clock()
        await asyncio.to_thread(self._sync_catalog)
        self._loop = asyncio.get_running_loop()
        if self.config.alerts.sinks:
            sinks = {
                s.name: build_sink(s, transport=self._sink_transport)
                for s in self.config.alerts.sinks
            }
            self._delivery = DeliveryWorker(
                self.config.alerts.delivery, store, sinks, clock=self._clock
            )
            self._delivery_task = asyncio.create_task(self._delivery.run(), name="alert delivery")
        server = self.config.server
        app = create_app(
            store,
            self.registry,
            version=__version__,
            streams=self.config.streams,
            tokens=server.tokens,
            suites=self.config.suites,
            models=self.config.models,
            allowed_endpoint_prefixes=server.allowed_endpoint_prefixes,
            max_body_bytes=server.max_body_bytes,
            open_reads=server.open_reads,
            submit=self.submit,
            cluster=self.membership.state,
        )
        self._server = await start_server(
            app,
            host=server.host,
            port=server.port,
            what="HTTP API",
            limits=HttpLimits(
                header_timeout=server.header_timeout.total_seconds(),
                body_timeout=server.body_timeout.total_seconds(),
                max_connections=server.max_connections,
            ),
            fd_reserve=server.fd_reserve,
        )
        logger.info("HTTP API on http://%s:%d (metrics at /metrics)", server.host, self.port)
        self._warn_unwritable_streams()
        self._scheduler = self._build_scheduler()
        self._scheduler.start()
        suite_jobs = len(self._scheduler.get_jobs()) - 2  # minus the alert timer and sweep
        logger.info(
            "replica %s: %d job(s), the alert timer, the sweep%s (run by the leader)",
            self.membership.name,
            suite_jobs,
            " and retention" if self.config.store.retention.enabled else "",
        )
        self.membership.start()
        self._worker_task = asyncio.create_task(self.worker.run(), name="queued runs")
        self._window_task = asyncio.create_task(self.window_worker.run(), name="queued windows")

    def _warn_unwritable_streams(self) -> None:
        writers = [t for t in self.config.server.tokens if "write" in t.scopes]
        ingest = [s.name for s in self.config.streams if isinstance(s.source, IngestSourceConfig)]
        if ingest and not writers:
            logger.warning(
                "streams %s take ingested records, but no [[server.tokens]] entry has the "
                "'write' scope: every POST to them will be refused (401)",
                ", ".join(ingest),
            )

    def _sync_catalog(self) -> None:
        config = self.config
        models = [
            CatalogModel(m.name, m.adapter, redact_url(m.url), m.role, config_hash(m))
            for m in config.models
        ]
        suites = [
            CatalogSuite(s.name, str(s.dataset), s.task, config_hash(s)) for s in config.suites
        ]
        self.store.runs.sync_catalog(models, suites, at=self._clock())

    def _build_scheduler(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(
            timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
        )
        for suite, model in self.config.jobs():
            schedule = suite.schedule
            if schedule is None:
                continue
            scheduler.add_job(
                self._run_job,
                build_trigger(schedule),
                args=(suite, model),
                id=f"{suite.name}/{model.name}",
                name=f"suite {suite.name} on model {model.name}",
                misfire_grace_time=max(1, round(schedule.misfire_grace.total_seconds())),
                # The job decides itself whether its last run is still going (_run_job).
                max_instances=3,
            )
        for stream in self.config.streams:
            if stream.schedule is None:
                continue
            scheduler.add_job(
                self.stream_jobs.drift_job,
                build_trigger(stream.schedule),
                args=(stream.name,),
                id=f"stream:{stream.name}",
                name=f"drift of stream {stream.name}",
                misfire_grace_time=max(1, round(stream.schedule.misfire_grace.total_seconds())),
            )
        # Always on, even without rules: alerts of rules removed from the configuration
        # are resolved by the tick rather than left firing forever.
        scheduler.add_job(
            self._alert_tick,
            IntervalTrigger(seconds=self.config.alerts.evaluate_every.total_seconds()),
            id="alerts:tick",  # ":" is not allowed in names: no suite/model job can clash
            name="alert rules on the timer",
            next_run_time=self._clock(),
        )
        scheduler.add_job(
            self.recovery.sweep,
            IntervalTrigger(seconds=self.config.store.heartbeat_every.total_seconds()),
            id="runs:sweep",
            name="sweep for abandoned runs",
        )
        if self.config.store.retention.enabled:
            scheduler.add_job(
                self._retention_job,
                IntervalTrigger(seconds=self.config.store.retention.every.total_seconds()),
                id="store:retention",
                name="delete expired history",
                next_run_time=self._clock(),
            )
        scheduler.add_listener(self.recovery.on_missed, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        return scheduler

    async def _retention_job(self) -> None:
        """One retention pass in a worker thread, drained like a run at shutdown (which
        stops it after its current batch)."""
        with tracked(self._inflight):
            try:
                await asyncio.to_thread(self.retention.run_once)
            except StoreBusy as exc:  # SQLite stayed locked by other writers: try next time
                logger.warning("retention pass put off: %s", exc)
            except StoreUnavailable as exc:
                self.outage.failed(exc)
            except Exception:
                logger.exception("retention pass failed")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coroutine`` as a task drained (then cancelled) at shutdown, like a run;
        once shutting down, not at all."""
        if self._stop.is_set():
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _alert_tick(self) -> None:
        """Time-based rules (``stale``), repeats and Alertmanager re-sends (the leader's)."""
        if not self.membership.leading:
            return
        pairs = [(s.name, m.name) for s, m in self.config.jobs() if s.schedule is not None]
        try:
            streams = await asyncio.to_thread(self.stream_jobs.activity)
            tick = await asyncio.to_thread(self.alerts.tick, pairs, streams)
            await self.alerts.handle(tick)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
        except Exception:
            logger.exception("alert evaluation on the timer failed")

    def _wake_delivery(self) -> None:
        # Called from worker threads: hop onto the loop that owns the worker's event.
        worker = self._delivery
        if worker is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(worker.wake)

    async def _run_job(
        self, suite: SuiteConfig, model: AnyModelConfig, *, at_start: bool = False
    ) -> None:
        """A scheduled slot (the leader's): its run queued, or, while the store does not
        answer, the slot kept for when it does. Skipped while the last scheduled run of
        the suite x model is still queued or running. ``at_start``: ``run_at_start``'s
        run, for a slot of its own (now)."""
        if not self.membership.leading:
            return
        assert suite.schedule is not None
        now = self._clock()
        slot = (
            now if at_start else slot_at(suite.schedule, now, lookback=suite.schedule.misfire_grace)
        )
        if self.outage.down:
            self.recovery.keep(suite, model, slot)
            return
        try:
            queued = await asyncio.to_thread(self._queue_slot, suite, model, slot, True)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            self.recovery.keep(suite, model, slot)
            return
        except StoreError as exc:
            logger.warning("suite %s on model %s: slot not queued: %s", suite.name, model.name, exc)
            return
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            # The scheduler's shutdown cancels its running jobs: a slot being queued as the
            # daemon stops is queued or not (one transaction), not a job error to log.
            return
        if queued == "busy":
            logger.warning(
                "suite %s on model %s: slot %s skipped, the previous run is still going",
                suite.name,
                model.name,
                slot.isoformat(),
            )
            self.recovery.skip(suite, model, "busy")
        elif isinstance(queued, int):
            self.worker.wake()

    def _queue_slot(
        self, suite: SuiteConfig, model: AnyModelConfig, slot: datetime, only_if_idle: bool
    ) -> int | str:
        return self.store.queue.enqueue_slot(
            suite=suite.name,
            model=model.name,
            slot_at=slot,
            config_hash=config_hash(suite, model),
            at=self._clock(),
            only_if_idle=only_if_idle,
        )

    def _on_leading(self, leading: bool) -> None:
        """Leadership won or lost. Won: queue the slots missed since the last queued one
        (a leader that died, a restart) before the scheduler's next firing."""
        if not leading or self._loop is None:
            return
        self._spawn(self._catch_up_slots(), "slots missed before this replica led")
        self._spawn(self._alert_tick(), "alert rules on taking the lead")
        if self.membership.won_at_start and not self._started_work:
            self._started_work = True  # run_at_start: once, by a replica that led from start
            for suite, model in self.config.jobs():
                if suite.schedule is not None and suite.schedule.run_at_start:
                    self._spawn(self._run_job(suite, model, at_start=True), "run at start")
            for stream in self.config.streams:
                if stream.schedule is not None and stream.schedule.run_at_start:
                    self._spawn(
                        self.stream_jobs.drift_job(stream.name), f"drift of {stream.name} at start"
                    )

    async def _catch_up_slots(self) -> None:
        """Queue every slot after the newest one queued of each scheduled suite x model,
        up to now, if within its ``misfire_grace`` (at most ``MAX_KEPT``); count the older
        ones (up to ``MAX_COUNTED``) as skipped, reason ``misfire``."""
        try:
            last = await asyncio.to_thread(self.store.queue.last_slots)
            now = self._clock()
            queued = skipped = 0
            for suite, model in self.config.jobs():
                schedule, since = suite.schedule, last.get((suite.name, model.name))
                if schedule is None or since is None:
                    continue
                oldest = now - schedule.misfire_grace
                due = list(slots(schedule, after=max(since, oldest), until=now))[-MAX_KEPT:]
                late = sum(
                    1 for _ in islice(slots(schedule, after=since, until=oldest), MAX_COUNTED)
                )
                for _ in range(late):
                    self.recovery.skip(suite, model, "misfire")
                skipped += late
                for slot in due:
                    outcome = await asyncio.to_thread(self._queue_slot, suite, model, slot, False)
                    queued += isinstance(outcome, int)
        except StoreUnavailable as exc:
            self.outage.failed(exc)
            return
        except StoreError as exc:
            logger.warning("queueing the slots missed before this replica led failed: %s", exc)
            return
        if not queued and not skipped:
            return
        logger.info(
            "slots missed while no replica led: %d queued, %d skipped (past misfire_grace)",
            queued,
            skipped,
        )
        self.worker.wake()

    def submit(self, suite: SuiteConfig, queued: Sequence[tuple[AnyModelConfig, int]]) -> None:
        """``POST /v1/runs`` stored ``queued`` runs: look for them now (any replica may
        claim them). ``SubmitRefused`` once shutting down. Called on the daemon's loop."""
        if self._stop.is_set():
            raise SubmitRefused("shutting down")
        self.worker.wake()

    async def _shutdown(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            # Pause, not shut down: APScheduler 3's asyncio executor cancels every running
            # job on shutdown, which would interrupt in-flight runs at once instead of
            # letting them use their grace.
            scheduler.pause()
        self.retention.stop()
        if self._worker_task is not None:
            self._worker_task.cancel("shutdown: claim no more runs")
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker_task
        if self._window_task is not None:
            self._window_task.cancel("shutdown: claim no more windows")
            with contextlib.suppress(asyncio.CancelledError):
                await self._window_task
        await self._drain(self.config.server.shutdown_grace)
        await self.membership.aclose()
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
        await self._runner.aclose()
        await self.heartbeats.aclose()
        if self._delivery_task is not None:
            self._delivery_task.cancel("shutdown")
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery_task
        if self._delivery is not None:
            await self._delivery.aclose()
        self.stream_jobs.close()
        if self._server is not None:
            await self._server.stop()
        await asyncio.to_thread(self.store.close)
        logger.info("stopped")

    async def _drain(self, grace: timedelta) -> None:
        """Let in-flight runs finish for ``grace`` (less if forced), then cancel them."""
        pending = {t for t in self._inflight if not t.done()}
        if pending and not self._force.is_set():
            logger.info("waiting up to %s for %d run(s) to finish", grace, len(pending))
            all_done = asyncio.ensure_future(asyncio.wait(pending))
            forced = asyncio.ensure_future(self._force.wait())
            await asyncio.wait(
                [all_done, forced],
                timeout=grace.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            all_done.cancel()
            forced.cancel()
        pending = {t for t in self._inflight if not t.done()}
        for task in pending:
            task.cancel("shutdown: grace period over")
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            logger.warning("received %s again: cancelling in-flight runs now", sig.name)
            self.request_stop(force=True)
            return
        logger.info(
            "received %s: shutting down (in-flight runs get %s; send it again to force)",
            sig.name,
            self.config.server.shutdown_grace,
        )
        self.request_stop()
