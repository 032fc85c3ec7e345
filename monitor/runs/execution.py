"""One run in motion: the workers that ask the model, the scoring stage and the evaluation
that score the answers, the batches on their way to the store, the deadline and the error
budget.

``Runner.run`` creates an ``Execution`` for every run it registers and hands it the
runner's adapter, its batch settings and its ``_finish``; see ``monitor.runs.runner`` for
what a run guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.adapters import Adapter, Prediction
from monitor.config import AnyModelConfig, SuiteConfig
from monitor.errors import AdapterError
from monitor.records import Case, CaseResult, JudgeUsage, RunOperations, RunStatus
from monitor.runs.case_feed import CaseFeed
from monitor.runs.datasets import field_value
from monitor.runs.durability import StoreRetry
from monitor.runs.judging import AnswerCache, Judging, baseline_answers
from monitor.runs.scoring import Answer, ScoringStage
from monitor.runs.writes import BatchWrites
from monitor.scoring.evaluation import (
    Evaluation,
    EvaluationResult,
    Fairness,
    Repeats,
    Scored,
    evaluation_results,
)
from monitor.scoring.judged import JudgeMetric
from monitor.scoring.operations import OperationsRecorder, Price

if TYPE_CHECKING:
    from monitor.runs.runner import Runner

logger = logging.getLogger(__name__)

DEADLINE = "not answered before the run's deadline"

Progress = Callable[[int, int], None]
"""Called with (cases done, cases in the run) as cases complete."""


@dataclass
class Execution:
    """The moving parts of one run: workers, the evaluation, the batch buffer."""

    runner: Runner
    run_id: int
    suite: SuiteConfig
    model: AnyModelConfig
    feed: CaseFeed
    size: int
    progress: Progress | None
    retry: StoreRetry
    buffer: list[CaseResult] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        suite = self.suite
        metrics = suite.build_metrics()
        self.evaluation = Evaluation(
            metrics,
            repeats=Repeats(
                reducer=suite.reducer,
                pass_score=suite.pass_score,
                at_least=suite.at_least,
                numeric=suite.task == "regression",
            ),
            slices=suite.slices,
            seed=suite.seed,
            fairness=None
            if suite.fairness is None
            else Fairness(
                suite.fairness.groups, suite.fairness.positive, tuple(suite.fairness.metrics)
            ),
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
        self.writes = BatchWrites(
            self.runner._writer,
            self.runner._store,
            self.run_id,
            self._write_failed,
            retry=self.retry,
            limit=self.runner._buffer_cases,
        )
        self.flushing = True  # a full batch starts a write; not while the run stops
        self.broken: BaseException | None = None  # what stops the run: a bug, a failed write
        self.judging = Judging(
            [m for m in metrics if isinstance(m, JudgeMetric)],
            self.runner._judges,
            self.runner._adapter,
            repeats=suite.judge_repeats,
            reducer=suite.judge_reducer,
            cache=AnswerCache(self.runner._store, self.runner._clock),
            cache_enabled=suite.judge_cache,
        )
        pool = self.runner._scoring if self.evaluation.cpu_bound else None
        self.scoring = ScoringStage(
            self.evaluation, self._take, self._after_scoring, self._write_failed, pool
        )

    async def execute(self) -> None:
        adapter = self.runner._adapter(self.model)
        if self.judging.needs_baseline:
            self.judging.baseline = await self.retry.call(
                lambda _: baseline_answers(
                    self.runner._store, self.suite, self.model, self.runner._roles
                )
            )
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
        await self.scoring.drain()
        await self._flush()
        await self.writes.settle()
        if self.broken is not None:
            raise self.broken
        if self.feed.error is not None:
            raise self.feed.error
        result = await self._results()
        for reason in result.skipped:
            logger.warning("run %d: metric skipped: %s", self.run_id, reason)
        failure = self._budget_failure()
        status = RunStatus.FAILED if failure else RunStatus.SUCCEEDED
        await self.runner._finish(
            self.run_id, status, failure, self.retry, None if failure else result, execution=self
        )

    def judges(self) -> list[JudgeUsage]:
        """What each judge metric asked its judge so far, and what it cost."""
        return self.judging.usage()

    async def _worker(self, adapter: Adapter) -> None:
        while (case := await self.feed.next()) is not None:
            index = self.next_case
            self.next_case += 1
            self.in_flight[index] = case
            answer = await self._ask(adapter, case)
            if self.judging and answer[1] is None:
                answer = await self.judging.judge(case, answer[0]), None
            del self.in_flight[index]
            self.scoring.put(case, answer)
            await self.scoring.room()
            if self.broken is not None:
                raise self.broken
            await self.writes.keep_up()

    async def _ask(self, adapter: Adapter, case: Case) -> Answer:
        predictions: list[Prediction] = []
        for _ in range(self.suite.repeats):
            try:
                predictions.append(await adapter.predict(case))
            except AdapterError as exc:
                return predictions, exc
        return predictions, None

    def _take(self, case: Case, answer: Answer, scored: Scored | None) -> None:
        """Record a case the scoring stage is done with; start a write at a full batch."""
        predictions, error = answer
        for p in predictions:
            self.recorder.request(p.latency_seconds, p.prompt_tokens, p.completion_tokens)
        if error is not None:
            self._record(self._failed(case, error.kind, str(error)))
        else:
            assert scored is not None
            self._record(self._scored(case, predictions, scored))
        if self.flushing and len(self.buffer) >= self.runner._batch_size:
            self._start_flush()

    def _after_scoring(self) -> None:
        if self.flushing and self._flush_due():
            self._start_flush()

    def _scored(self, case: Case, predictions: Sequence[Prediction], scored: Scored) -> CaseResult:
        fields = [*self.suite.slices]
        if self.suite.fairness is not None:
            fields.append(self.suite.fairness.groups)
        slices = {name: field_value(case, name) for name in fields}
        self.evaluation.record(case.id, case.expected, scored, slices)
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

    async def _results(self) -> EvaluationResult:
        """The aggregates, computed off the event loop: in a worker process when the
        suite's metrics are CPU-bound (a bootstrap of BLEU recomputes it 1,000 times), so
        other runs' requests are not held by this one's GIL."""
        if self.scoring.off_loop:
            pool = self.runner._scoring.executor()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool, evaluation_results, self.evaluation)
        return await asyncio.to_thread(self.evaluation.results)

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
        await self.scoring.drain()
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
        write = self._start_flush()
        if write is not None:
            # Shielded: a worker cancelled at the deadline must not leave its batch
            # half-way.
            await asyncio.shield(write)

    async def store_the_rest(self) -> None:
        """For a run that is failing: score what was answered and store it after the
        writes under way (retried like them); wait until they are stored or failed."""
        self.flushing = False
        self.scoring.score_now()
        batch, self.buffer = self.buffer, []
        if batch:
            self.writes.start(batch)
        await self.writes.ended()

    def flush_now(self) -> None:
        """``store_the_rest``, synchronously and tried once: for a run being cancelled.
        ``StoreError`` if the store cannot take it."""
        self.flushing = False
        try:
            self.scoring.score_now()
        finally:
            batch, self.buffer = self.buffer, []
            self.writes.write_now(batch)

    def unstored(self) -> int:
        """Case results the run holds that never reached the store."""
        return self.writes.unstored() + len(self.buffer)

    def operations(self) -> RunOperations:
        return self.recorder.summary(time.perf_counter() - self.started)

    def _budget_failure(self) -> str | None:
        return error_budget_failure(
            self.recorder.cases, self.errors, self.first_error, self.suite.max_error_rate
        )


async def _stop(workers: Sequence[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


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
