"""Execute one run: a suite's cases against one model, scored and stored as they arrive.

The runner never lets a misbehaving endpoint crash it: each failed case is recorded with
its error kind, and the run ends ``failed`` with a reason when too many cases failed. Cases
are asked by a pool of workers; the answers that arrive together are scored together, once
every worker woken with one has sent its next request, and written to the store in batches
(every ``batch_size`` cases or ``flush_interval`` seconds) on a writer thread, so a
100k-case run holds neither every result in memory nor writes row by row, and the model
never waits for scoring or the store. ``finish_run`` then stores the
aggregates and the final status in one transaction. A cancelled run (daemon shutdown) keeps
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
import concurrent.futures
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from monitor.adapters import NO_OBSERVER, Adapter, Prediction, RequestObserver, build_adapter
from monitor.clock import Clock, utc_now
from monitor.config import AnyModelConfig, SuiteConfig, config_hash
from monitor.errors import AdapterError, DatasetError
from monitor.records import Case, CaseResult, Run, RunOperations, RunStatus
from monitor.runs.case_feed import CaseFeed
from monitor.runs.datasets import DatasetStream, field_value, open_dataset
from monitor.scoring.evaluation import Attempt, Evaluation, EvaluationResult, Repeats
from monitor.scoring.operations import OperationsRecorder, Price
from monitor.store import Store

logger = logging.getLogger(__name__)

INTERRUPTED = "the daemon stopped before the run finished"
DEADLINE = "not answered before the run's deadline"

Progress = Callable[[int, int], None]
"""Called with (cases done, cases in the run) as cases complete."""

_Answer = tuple[list[Prediction], AdapterError | None]
"""A case's predictions, and the error that stopped it (its earlier attempts still count
for latency, tokens and cost)."""

_WRITES_IN_FLIGHT = 2
"""Batch writes under way at which the workers wait for the store."""


class Runner:
    """Runs suites against models. Keeps one adapter (and HTTP client) per model and URL.

    ``observer`` hears about every request sent to a model (the daemon's Prometheus
    instruments); by default nothing is observed.
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
        execution = _Execution(self, run_id, suite, model, feed, size, progress)
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
        execution: _Execution | None = None,
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
        """Close every adapter's HTTP client, and the writer thread."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()
        self._writer.shutdown(wait=False)


@dataclass
class _Execution:
    """The moving parts of one run: workers, the evaluation, the batch buffer."""

    runner: Runner
    run_id: int
    suite: SuiteConfig
    model: AnyModelConfig
    feed: CaseFeed
    size: int
    progress: Progress | None
    buffer: list[CaseResult] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        suite = self.suite
        self.evaluation = Evaluation(
            suite.build_metrics(),
            repeats=Repeats(
                reducer=suite.reducer,
                pass_score=suite.pass_score,
                at_least=suite.at_least,
                numeric=suite.task == "regression",
            ),
            slices=suite.slices,
            seed=suite.seed,
        )
        price = self.model.price
        self.recorder = OperationsRecorder(
            None
            if price is None
            else Price(price.prompt, price.completion, price.per_tokens, price.currency)
        )
        self.last_flush = time.monotonic()
        self.next_case = 0
        self.in_flight: dict[int, Case] = {}
        self.writes = _BatchWrites(self.runner, self.run_id, self._write_failed)
        self.answers: deque[tuple[Case, _Answer]] = deque()
        self.scoring_due = False
        self.broken: BaseException | None = None  # what stops the run: a bug, a failed write

    async def execute(self) -> None:
        adapter = self.runner._adapter(self.model)
        deadline = self.suite.deadline
        workers = [
            asyncio.create_task(self._worker(adapter))
            for _ in range(min(self.model.concurrency, self.size))
        ]
        try:
            async with asyncio.timeout(deadline.total_seconds() if deadline else None):
                await asyncio.gather(*workers)
        except TimeoutError:
            await self.writes.settle()
            await self._expire(workers)
        except Exception:
            await _stop(workers)
            raise
        await self._flush()
        await self.writes.settle()
        if self.broken is not None:
            raise self.broken
        if self.feed.error is not None:
            raise self.feed.error
        result = await asyncio.to_thread(self.evaluation.results)
        for reason in result.skipped:
            logger.warning("run %d: metric skipped: %s", self.run_id, reason)
        failure = self._budget_failure()
        status = RunStatus.FAILED if failure else RunStatus.SUCCEEDED
        await self.runner._finish(
            self.run_id, status, failure, None if failure else result, execution=self
        )

    async def _worker(self, adapter: Adapter) -> None:
        while (case := await self.feed.next()) is not None:
            index = self.next_case
            self.next_case += 1
            self.in_flight[index] = case
            answer = await self._ask(adapter, case)
            del self.in_flight[index]
            self._answered(case, answer)
            if self.broken is not None:
                raise self.broken
            await self.writes.keep_up()

    async def _ask(self, adapter: Adapter, case: Case) -> _Answer:
        predictions: list[Prediction] = []
        for _ in range(self.suite.repeats):
            try:
                predictions.append(await adapter.predict(case))
            except AdapterError as exc:
                return predictions, exc
        return predictions, None

    def _answered(self, case: Case, answer: _Answer) -> None:
        """Queue an answer to be scored once every worker woken with it has sent its
        next request (see ``_score_answers``)."""
        self.answers.append((case, answer))
        if not self.scoring_due:
            self.scoring_due = True
            asyncio.get_running_loop().call_soon(self._score_answers)

    def _score_answers(self) -> None:
        """Score and record the answers queued since the last call, and start a batch
        write when one is due.

        Answers arrive together (the model answers the requests sent together), and the
        event loop wakes every worker with an answer in one pass. Scoring in that pass
        would hold back each worker's next request by the scoring of every answer before
        it; scheduled with ``call_soon``, this runs after the pass, when every one of those
        requests is on its way. An error here (a bug, not a model's) ends the run: the
        workers raise it.
        """
        self.scoring_due = False
        try:
            self._score_pending(flush=True)
            if self._flush_due():
                self._start_flush()
        except Exception as exc:
            self.broken = exc

    def _score_pending(self, *, flush: bool) -> None:
        """Score and record every queued answer; with ``flush``, start a write at each
        full batch."""
        answers, size = self.answers, self.runner._batch_size
        while answers:
            case, (predictions, error) = answers.popleft()
            for p in predictions:
                self.recorder.request(p.latency_seconds, p.prompt_tokens, p.completion_tokens)
            if error is not None:
                self._record(self._failed(case, error.kind, str(error)))
            else:
                self._record(self._scored(case, predictions))
            if flush and len(self.buffer) >= size:
                self._start_flush()

    def _scored(self, case: Case, predictions: Sequence[Prediction]) -> CaseResult:
        slices = {name: field_value(case, name) for name in self.suite.slices}
        scored = self.evaluation.add(
            case.expected, [Attempt(p.value, p.scores) for p in predictions], slices
        )
        return CaseResult(
            case.id,
            case.inputs,
            case.expected,
            prediction=scored.prediction,
            scores=scored.scores,
            latency_seconds=sum(p.latency_seconds for p in predictions) / len(predictions),
            metadata=case.metadata,
            prompt_tokens=_total(p.prompt_tokens for p in predictions),
            completion_tokens=_total(p.completion_tokens for p in predictions),
            attempts=scored.attempts,
            model_scores=scored.model_scores,
        )

    def _failed(self, case: Case, kind: str, error: str) -> CaseResult:
        return CaseResult(
            case.id,
            case.inputs,
            case.expected,
            error_kind=kind,
            error=error,
            metadata=case.metadata,
        )

    def _record(self, result: CaseResult) -> None:
        failed = result.error_kind is not None
        self.recorder.case(failed=failed)
        if failed:
            self.errors[str(result.error_kind)] += 1
            self.first_error = self.first_error or result.error
        self.buffer.append(result)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.size)

    async def _expire(self, workers: Sequence[asyncio.Task[None]]) -> None:
        """The deadline passed: stop asking, and record every unanswered case as a
        ``timeout``, in batches like any other result: first the cases being asked, then
        the rest of the dataset, read through."""
        await _stop(workers)
        self._score_pending(flush=True)
        asked, self.in_flight = [self.in_flight[i] for i in sorted(self.in_flight)], {}
        logger.warning(
            "run %d: deadline passed, %d cases unanswered", self.run_id, self.size - self.done
        )
        for case in asked:
            await self._timed_out(case)
        while (rest := await self.feed.next()) is not None:
            await self._timed_out(rest)

    async def _timed_out(self, case: Case) -> None:
        self._record(self._failed(case, "timeout", DEADLINE))
        if len(self.buffer) >= self.runner._batch_size:
            await self._flush()

    def _flush_due(self) -> bool:
        return len(self.buffer) >= self.runner._batch_size or (
            bool(self.buffer) and time.monotonic() - self.last_flush >= self.runner._flush_interval
        )

    def _start_flush(self) -> asyncio.Future[None] | None:
        """Start writing the buffered results; the write, or None."""
        batch, self.buffer = self.buffer, []
        self.last_flush = time.monotonic()
        return self.writes.start(batch) if batch else None

    def _write_failed(self, error: BaseException) -> None:
        self.broken = self.broken or error

    async def _flush(self) -> None:
        self._score_pending(flush=True)
        write = self._start_flush()
        if write is not None:
            # Shielded: a worker cancelled at the deadline must not leave its batch
            # half-way.
            await asyncio.shield(write)

    async def store_the_rest(self) -> None:
        """For a run that is failing: score what was answered, let the writes under way
        end (failed or not), and store what is buffered."""
        self._score_pending(flush=False)
        await self.writes.ended()
        batch, self.buffer = self.buffer, []
        await asyncio.to_thread(self.writes.write_now, batch)

    def flush_now(self) -> None:
        """``store_the_rest``, synchronously: for a run being cancelled."""
        try:
            self._score_pending(flush=False)
        finally:
            self.writes.ended_now()
            batch, self.buffer = self.buffer, []
            self.writes.write_now(batch)

    def operations(self) -> RunOperations:
        return self.recorder.summary(time.perf_counter() - self.started)

    def _budget_failure(self) -> str | None:
        return error_budget_failure(
            self.recorder.cases, self.errors, self.first_error, self.suite.max_error_rate
        )


class _BatchWrites:
    """One run's batch writes, on its runner's writer thread, tracked until stored: the
    run is finished only after every batch is, and a failed write (``on_error``) ends
    it."""

    def __init__(
        self, runner: Runner, run_id: int, on_error: Callable[[BaseException], None]
    ) -> None:
        self._runner = runner
        self._run_id = run_id
        self._on_error = on_error
        self._writes: set[asyncio.Future[None]] = set()
        self._pending: set[concurrent.futures.Future[None]] = set()  # the same writes

    def start(self, batch: list[CaseResult]) -> asyncio.Future[None]:
        pending = self._runner._writer.submit(self._runner._store.append_cases, self._run_id, batch)
        self._pending.add(pending)
        pending.add_done_callback(self._pending.discard)
        write = asyncio.wrap_future(pending)
        self._writes.add(write)
        write.add_done_callback(self._done)
        return write

    def _done(self, write: asyncio.Future[None]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and (error := write.exception()) is not None:
            self._on_error(error)

    async def keep_up(self) -> None:
        """Wait while the store is behind, rather than buffer without bound."""
        if len(self._writes) >= _WRITES_IN_FLIGHT:
            await asyncio.wait(list(self._writes), return_when=asyncio.FIRST_COMPLETED)

    async def settle(self) -> None:
        """Wait for every write under way; raises the first that failed."""
        if self._writes:
            await asyncio.gather(*list(self._writes))

    async def ended(self) -> None:
        """Wait for every write under way to end, failed or not."""
        if self._writes:
            await asyncio.wait(list(self._writes))

    def ended_now(self) -> None:
        """``ended``, blocking: for a run being cancelled, which must not await."""
        concurrent.futures.wait(list(self._pending))

    def write_now(self, batch: list[CaseResult]) -> None:
        """Store ``batch`` in the calling thread."""
        if batch:
            self._runner._store.append_cases(self._run_id, batch)


async def _stop(workers: Sequence[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


def _no_cases() -> Generator[Case, None, None]:
    yield from ()


def _total(values: Iterable[int | None]) -> int | None:
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def error_budget_failure(
    total: int, errors: Counter[str], first: str | None, max_error_rate: float
) -> str | None:
    """The reason a run failed its error budget, or None when it is within it."""
    failed = sum(errors.values())
    if not total:
        return "the dataset has no cases"
    if failed / total <= max_error_rate and failed < total:
        return None
    kinds = ", ".join(f"{kind} x{count}" for kind, count in errors.most_common())
    return (
        f"error rate {failed / total:.0%} ({failed} of {total} cases) exceeds"
        f" max_error_rate {max_error_rate:.0%}: {kinds}; first: {first}"
    )
