"""Execute one run: a suite's cases against one model, scored and stored as they arrive.

The runner never lets a misbehaving endpoint crash it: each failed case is recorded with
its error kind, and the run ends ``failed`` with a reason when too many cases failed. Cases
are asked by a pool of workers; the answers that arrive together are scored together, once
every worker woken with one has sent its next request (on the event loop for cheap metrics,
in worker processes for CPU-bound ones: see ``monitor.runs.scoring``), and written to the
store in batches (every ``batch_size`` cases or ``flush_interval`` seconds) on a writer
thread, so a 100k-case run holds neither every result in memory nor writes row by row, and
the model never waits for scoring or the store, nor does scoring land in a request's
latency. ``finish_run`` then stores the aggregates and the final status in one
transaction. A cancelled run (daemon shutdown) keeps
the cases it had and is stored as ``interrupted``, never left ``running``.

A store outage does not end a run: its writes are retried with back-off while its
results wait in a bounded queue (``[store] buffer_cases``; past it the workers wait), for
up to ``[store] retry_for``; then the run gives up and is stored ``failed`` with the
reason as soon as the store answers (``monitor.runs.durability``). While a run is here its
heartbeat is refreshed (``monitor.runs.heartbeat``), so a run whose process died is
finished by a sweep, and a live one never is. A suite's
``deadline`` bounds the whole run: cases not answered by then are recorded with error kind
``timeout`` and the run is judged by its error budget.

The dataset is streamed, never held: ``open_dataset`` checks the whole file first (a bad
file fails the run before any case is asked), then workers take cases from a ``CaseFeed``
that reads the file a chunk ahead of them. At the deadline, the cases still in the file are
read through to be recorded as ``timeout``, one batch at a time.

``monitor bench``, the daemon's scheduled runs and the runs the API queued all call
``Runner.run``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from monitor.adapters import NO_OBSERVER, Adapter, RequestObserver, build_adapter
from monitor.clock import Clock, utc_now
from monitor.config import AnyModelConfig, StoreConfig, SuiteConfig, config_hash
from monitor.errors import DatasetError, RegistryError, StoreError, StoreUnavailable
from monitor.records import Case, Run, RunStatus
from monitor.runs.case_feed import CaseFeed
from monitor.runs.datasets import DatasetStream, open_dataset
from monitor.runs.durability import GaveUp, StoreRetry
from monitor.runs.execution import Execution, Progress
from monitor.runs.heartbeat import Heartbeats
from monitor.runs.outage import StoreOutage
from monitor.runs.scoring import ScoringPool
from monitor.scoring.evaluation import EvaluationResult
from monitor.store.parts import RunsAndVerdicts

logger = logging.getLogger(__name__)

INTERRUPTED = "the daemon stopped before the run finished"


class Runner:
    """Runs suites against models. Keeps one adapter (and HTTP client) per model and URL.

    ``observer`` hears about every request sent to a model (the daemon's Prometheus
    instruments); by default nothing is observed. CPU-bound metrics are scored in
    ``scoring_processes`` worker processes (by default one a CPU, less one), started when
    the first suite that has one runs.

    ``models`` are the configured models: judge metrics find their judge among them,
    and each judge gets one adapter (one transport, its limits shared by every run).

    ``durability`` (the ``[store]`` section) sets the heartbeat, the retries and the
    buffer of a store outage; ``heartbeats`` and ``outage`` may be shared with the daemon,
    which holds queued runs and logs the outage once.

    A model with a ``registry`` is run as the version its alias names when the run starts
    (``{version}`` in its URL filled in), and the run stores that version; a registry that
    does not answer fails the run with the reason, before any case is asked.
    ``registry_transport`` replaces httpx's transport for registry calls (tests).
    """

    def __init__(
        self,
        store: RunsAndVerdicts,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        observer: RequestObserver = NO_OBSERVER,
        scoring_processes: int | None = None,
        durability: StoreConfig | None = None,
        heartbeats: Heartbeats | None = None,
        outage: StoreOutage | None = None,
        models: Sequence[AnyModelConfig] = (),
        registry_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._registry_transport = registry_transport
        durability = durability or StoreConfig()
        self._retry_for = durability.retry_for
        self._buffer_cases = durability.buffer_cases
        self._outage = outage
        self.heartbeats = heartbeats or Heartbeats(
            store, every=durability.heartbeat_every, clock=clock, outage=outage
        )
        self._store = store
        self._transport = transport
        self._observer = observer
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._adapters: dict[str, Adapter] = {}
        # The judges judge metrics name, by model name (``role = "judge"``).
        self._judges = {m.name: m for m in models if m.role in ("judge", "embedder")}
        self._roles = {m.name: m.role for m in models}
        # Batch writes, in order, off the event loop; one thread for every run.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-writer")
        self._scoring = ScoringPool(scoring_processes)

    async def run(
        self,
        suite: SuiteConfig,
        model: AnyModelConfig,
        *,
        trigger: str = "schedule",
        progress: Progress | None = None,
        run_id: int | None = None,
        tier: str = "",
    ) -> Run:
        """Run ``suite`` against ``model`` and return the stored run, whatever happened.

        With ``run_id``, execute that ``queued`` run (an API request) instead of creating
        one: it becomes ``running`` here, then final. ``StoreError`` if it is not queued.
        ``tier`` names the suite's tier ``suite`` is already configured as (a queued run
        has its tier stored).
        """
        store = self._store
        failure: str | None = None
        dataset: DatasetStream | None = None
        try:
            dataset = await asyncio.to_thread(open_dataset, suite)
        except DatasetError as exc:
            failure = str(exc)
        version: str | None = None
        if failure is None and model.registry is not None:
            try:
                version = await asyncio.to_thread(self._version, model)
            except RegistryError as exc:
                failure = str(exc)
            else:
                model = model.with_version(version)
        sha256 = dataset.sha256 if dataset else ""
        retry = StoreRetry(self._writer, retry_for=self._retry_for, outage=self._outage)
        size = dataset.size if dataset else 0
        run_id = await self._start(
            suite, model, trigger, sha256, run_id, retry, tier, size, version
        )
        logger.info("run %d started: suite %s, model %s", run_id, suite.name, model.name)
        feed = CaseFeed(dataset.cases() if dataset else _no_cases())
        execution = Execution(self, run_id, suite, model, feed, size, progress, retry)
        self.heartbeats.hold([run_id])
        try:
            if failure is not None:
                await self._finish(run_id, RunStatus.FAILED, failure, retry)
            else:
                await execution.execute()
        except asyncio.CancelledError:
            self._interrupt_now(run_id, execution)
            raise
        except GaveUp as exc:
            lost = execution.unstored()
            logger.error("run %d gave up: %s", run_id, exc)
            reason = f"{exc}; {lost} case result(s) were not stored"
            await self._finish(run_id, RunStatus.FAILED, reason, retry, forever=True)
        except StoreError as exc:  # refused, e.g. finished by a sweep while cut off
            logger.warning("run %d ended: the store refused its results: %s", run_id, exc)
        except DatasetError as exc:  # the file changed under the run
            await execution.store_the_rest()
            await self._finish(run_id, RunStatus.FAILED, str(exc), retry, forever=True)
        except Exception as exc:
            logger.exception("run %d failed with an internal error", run_id)
            await execution.store_the_rest()
            reason = f"internal error: {type(exc).__name__}: {exc}"
            await self._finish(run_id, RunStatus.FAILED, reason, retry, forever=True)
        finally:
            feed.close()
            self.heartbeats.release([run_id])
        run = await retry.call(lambda _: store.runs.get_run(run_id), forever=True)
        assert run is not None
        logger.info("run %d %s%s", run_id, run.status, f": {run.error}" if run.error else "")
        return run

    async def _start(
        self,
        suite: SuiteConfig,
        model: AnyModelConfig,
        trigger: str,
        sha256: str,
        run_id: int | None,
        retry: StoreRetry,
        tier: str = "",
        planned: int | None = None,
        version: str | None = None,
    ) -> int:
        """Register the run (``planned``: the cases it will score; ``version``: the model
        version its registry alias named). A new one is not
        retried: ``StoreUnavailable`` tells the caller (the daemon keeps a scheduled slot
        for later); a queued one waits for the store like any write."""
        if run_id is None:
            try:
                return await asyncio.to_thread(
                    self._register, suite, model, trigger, sha256, None, tier, planned, version
                )
            except StoreUnavailable as exc:
                if self._outage is not None:
                    self._outage.failed(exc)
                raise
        queued = run_id

        def start(attempt: int) -> int:
            if attempt:  # the last attempt may have committed before the connection broke
                current = self._store.runs.get_run(queued)
                if current is not None and current.status is RunStatus.RUNNING:
                    return queued
            return self._register(
                suite, model, trigger, sha256, queued, planned=planned, version=version
            )

        return await retry.call(start)

    def _version(self, model: AnyModelConfig) -> str:
        """The version ``model``'s registry alias names now (``RegistryError`` if the
        registry cannot tell)."""
        from monitor.registry import open_registry

        assert model.registry is not None
        with open_registry(model.registry, transport=self._registry_transport) as registry:
            return registry.alias_version()

    def _interrupt_now(self, run_id: int, execution: Execution) -> None:
        """Store what a cancelled run has and mark it ``interrupted``, synchronously (the
        task is being cancelled and must not await), each tried once: if the store does
        not answer, the sweep finishes the run once its heartbeat is stale."""
        try:
            execution.flush_now()
        except StoreError as exc:
            logger.warning("run %d: its last results were not stored: %s", run_id, exc)
        try:
            self._store.runs.finish_run(
                run_id, status=RunStatus.INTERRUPTED, at=self._clock(), error=INTERRUPTED
            )
        except StoreError as exc:
            logger.warning(
                "run %d could not be stored as interrupted (%s); a sweep will, once its"
                " heartbeat is stale",
                run_id,
                exc,
            )
            return
        logger.warning("run %d interrupted: %s", run_id, INTERRUPTED)

    def _register(
        self,
        suite: SuiteConfig,
        model: AnyModelConfig,
        trigger: str,
        sha256: str,
        run_id: int | None,
        tier: str = "",
        planned: int | None = None,
        version: str | None = None,
    ) -> int:
        """Store the run as ``running``: a new row, or the queued run ``run_id``."""
        digest = config_hash(suite, model)
        if run_id is not None:
            self._store.runs.start_run(
                run_id,
                dataset_sha256=sha256,
                config_hash=digest,
                at=self._clock(),
                n_planned=planned,
                model_version=version,
            )
            return run_id
        return self._store.runs.create_run(
            suite=suite.name,
            model=model.name,
            trigger=trigger,
            dataset_sha256=sha256,
            config_hash=digest,
            at=self._clock(),
            tier=tier,
            n_planned=planned,
            model_version=version,
        )

    async def _finish(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None,
        retry: StoreRetry,
        result: EvaluationResult | None = None,
        execution: Execution | None = None,
        *,
        forever: bool = False,
    ) -> None:
        """Store the final status, retried while the store is unreachable (``GaveUp``
        past ``retry_for``, unless ``forever``). A refusal is logged: the run was finished
        elsewhere (a sweep), and there is nothing left to store."""
        operations = execution.operations() if execution is not None else None
        judges = execution.judges() if execution is not None else ()
        at = self._clock()

        def finish(attempt: int) -> None:
            try:
                self._store.runs.finish_run(
                    run_id,
                    status=status,
                    at=at,
                    error=error,
                    metrics=result.metrics if result else (),
                    slices=result.slices if result else (),
                    operations=operations,
                    judges=judges,
                    fairness=result.fairness if result else (),
                    gaps=result.gaps if result else (),
                )
            except StoreUnavailable:
                raise
            except StoreError:
                stored = self._store.runs.get_run(run_id) if attempt else None
                if stored is None or (stored.status, stored.finished_at) != (status, at):
                    raise  # not this write's own earlier attempt, committed unseen

        try:
            await retry.call(finish, forever=forever)
        except GaveUp:
            raise
        except StoreError as exc:
            logger.warning("run %d could not be finished %s: %s", run_id, status, exc)

    def _adapter(self, model: AnyModelConfig) -> Adapter:
        key = model.name
        adapter = self._adapters.get(key)
        if adapter is not None and adapter.config.url != model.url:
            # An API run pointed the model at another endpoint: it gets an adapter of its
            # own rather than replace (and leak) the one other runs of the model use.
            key = f"{model.name} {model.url}"
            adapter = self._adapters.get(key)
        if adapter is None or adapter.config != model:
            adapter = build_adapter(model, transport=self._transport, observer=self._observer)
            self._adapters[key] = adapter
        return adapter

    async def aclose(self) -> None:
        """Close every adapter's HTTP client, the writer thread and the scoring
        processes."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()
        await self.heartbeats.aclose()
        self._writer.shutdown(wait=False)
        await self._scoring.aclose()


def _no_cases() -> Generator[Case, None, None]:
    yield from ()
