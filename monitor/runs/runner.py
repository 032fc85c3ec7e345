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
the cases it had and is stored as ``interrupted``, never left ``running``. A suite's
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
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

import httpx

from monitor.adapters import NO_OBSERVER, Adapter, RequestObserver, build_adapter
from monitor.clock import Clock, utc_now
from monitor.config import AnyModelConfig, SuiteConfig, config_hash
from monitor.errors import DatasetError
from monitor.records import Case, Run, RunStatus
from monitor.runs.case_feed import CaseFeed
from monitor.runs.datasets import DatasetStream, open_dataset
from monitor.runs.execution import Execution, Progress
from monitor.runs.scoring import ScoringPool
from monitor.scoring.evaluation import EvaluationResult
from monitor.store import Store

logger = logging.getLogger(__name__)

INTERRUPTED = "the daemon stopped before the run finished"


class Runner:
    """Runs suites against models. Keeps one adapter (and HTTP client) per model and URL.

    ``observer`` hears about every request sent to a model (the daemon's Prometheus
    instruments); by default nothing is observed. CPU-bound metrics are scored in
    ``scoring_processes`` worker processes (by default one a CPU, less one), started when
    the first suite that has one runs.
    """

    def __init__(
        self,
        store: Store,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        observer: RequestObserver = NO_OBSERVER,
        scoring_processes: int | None = None,
    ) -> None:
        self._store = store
        self._transport = transport
        self._observer = observer
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._adapters: dict[str, Adapter] = {}
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
    ) -> Run:
        """Run ``suite`` against ``model`` and return the stored run, whatever happened.

        With ``run_id``, execute that ``queued`` run (an API request) instead of creating
        one: it becomes ``running`` here, then final. ``StoreError`` if it is not queued.
        """
        store = self._store
        failure: str | None = None
        dataset: DatasetStream | None = None
        try:
            dataset = await asyncio.to_thread(open_dataset, suite)
        except DatasetError as exc:
            failure = str(exc)
        sha256 = dataset.sha256 if dataset else ""
        run_id = await asyncio.to_thread(self._register, suite, model, trigger, sha256, run_id)
        logger.info("run %d started: suite %s, model %s", run_id, suite.name, model.name)
        feed = CaseFeed(dataset.cases() if dataset else _no_cases())
        size = dataset.size if dataset else 0
        execution = Execution(self, run_id, suite, model, feed, size, progress)
        try:
            if failure is not None:
                await self._finish(run_id, RunStatus.FAILED, failure)
            else:
                await execution.execute()
        except asyncio.CancelledError:
            # Synchronous on purpose: the task is being cancelled and must not await.
            execution.flush_now()
            store.finish_run(
                run_id, status=RunStatus.INTERRUPTED, at=self._clock(), error=INTERRUPTED
            )
            logger.warning("run %d interrupted: %s", run_id, INTERRUPTED)
            raise
        except DatasetError as exc:  # the file changed under the run
            await execution.store_the_rest()
            await self._finish(run_id, RunStatus.FAILED, str(exc))
        except Exception as exc:
            logger.exception("run %d failed with an internal error", run_id)
            await execution.store_the_rest()
            await self._finish(
                run_id, RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            )
        finally:
            feed.close()
        run = await asyncio.to_thread(store.get_run, run_id)
        assert run is not None
        logger.info("run %d %s%s", run_id, run.status, f": {run.error}" if run.error else "")
        return run

    def _register(
        self,
        suite: SuiteConfig,
        model: AnyModelConfig,
        trigger: str,
        sha256: str,
        run_id: int | None,
    ) -> int:
        """Store the run as ``running``: a new row, or the queued run ``run_id``."""
        digest = config_hash(suite, model)
        if run_id is not None:
            self._store.start_run(
                run_id, dataset_sha256=sha256, config_hash=digest, at=self._clock()
            )
            return run_id
        return self._store.create_run(
            suite=suite.name,
            model=model.name,
            trigger=trigger,
            dataset_sha256=sha256,
            config_hash=digest,
            at=self._clock(),
        )

    async def _finish(
        self,
        run_id: int,
        status: RunStatus,
        error: str | None,
        result: EvaluationResult | None = None,
        execution: Execution | None = None,
    ) -> None:
        operations = execution.operations() if execution is not None else None
        await asyncio.to_thread(
            self._store.finish_run,
            run_id,
            status=status,
            at=self._clock(),
            error=error,
            metrics=result.metrics if result else (),
            slices=result.slices if result else (),
            operations=operations,
        )

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
        self._writer.shutdown(wait=False)
        await self._scoring.aclose()


def _no_cases() -> Generator[Case, None, None]:
    yield from ()
