"""Where a run's answers are scored: never in the way of the requests to the model.

A worker that has an answer queues it and asks its next case at once; the scoring stage
scores what is queued after the event loop's current pass (when every worker woken with
an answer has sent its next request), and hands each scored case back to the run, in the
order the answers came:

- on the event loop, for suites whose metrics are cheap (accuracy, exact match,
  ``contains``): a few microseconds a case, less than sending it to another process;
- in the runner's worker processes (``ScoringPool``) for suites with a CPU-bound metric
  (``Metric.cpu_bound``: ROUGE, BLEU, chrF, JSON Schema, NDCG). Scoring there holds
  neither the event loop nor its GIL, so an answer is read when it arrives and its
  latency is the endpoint's. The pool scores with the same code as the loop would, so the
  numbers are the same.

The stage holds at most ``BACKLOG`` answers: when scoring falls that far behind the
model, workers wait for it before their next request (the time they wait is not in any
request's latency). A stopping run scores what is left in its own process
(``score_now``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from monitor.adapters import Prediction
from monitor.errors import AdapterError
from monitor.records import Case
from monitor.scoring.evaluation import Attempt, Evaluation, Scored, score_cases

BACKLOG = 128
"""Answers waiting to be scored at which the workers wait for the scoring."""

BATCH = 32
"""Answers sent to a worker process at a time, at most."""

Answer = tuple[list[Prediction], AdapterError | None]
"""A case's predictions, and the error that stopped it (its earlier attempts still count
for latency, tokens and cost)."""

Take = Callable[[Case, Answer, Scored | None], None]
"""Called with each case in turn, its answer and its scores (None for a failed case)."""


def default_processes() -> int:
    """Worker processes for scoring: one a CPU this process may use, less the one its event
    loop needs; at least one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


class ScoringPool:
    """A runner's worker processes for CPU-bound scoring, shared by its runs.

    Nothing starts until a suite with a CPU-bound metric runs (``executor``): a process
    starts in about a second (the interpreter and the scoring libraries), which a runner
    of cheap suites never pays. Processes are spawned, not forked: the daemon has threads
    (the store's writer, the API), and a fork would copy their locks mid-use. ``aclose``
    stops them.
    """

    def __init__(self, processes: int | None = None) -> None:
        if processes is not None and processes < 1:
            raise ValueError(f"scoring processes must be positive, got: {processes}")
        self.processes = processes or default_processes()
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        """The worker processes, started on first use."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    @property
    def started(self) -> bool:
        return self._executor is not None

    async def aclose(self) -> None:
        """Stop the worker processes, if any started, and wait for them to exit."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


class ScoringStage:
    """One run's answers between the workers that got them and the run that records
    them; see the module docstring.

    ``take`` records a scored case, ``after`` runs after each group of cases (the run
    starts a batch write when one is due), and ``on_error`` hears of an error raised while
    scoring or recording (a bug, not a model's): the run stops with it.
    """

    def __init__(
        self,
        evaluation: Evaluation,
        take: Take,
        after: Callable[[], None],
        on_error: Callable[[BaseException], None],
        pool: ScoringPool | None,
    ) -> None:
        self._evaluation = evaluation
        self._take = take
        self._after = after
        self._on_error = on_error
        self._pool = pool.executor() if pool is not None else None
        self._in_flight = 2 * pool.processes if pool is not None else 0
        self._scorer: bytes | None = None  # pickled when first sent: a failure fails the run
        self._queued: deque[tuple[Case, Answer]] = deque()
        self._batches: deque[tuple[list[tuple[Case, Answer]], asyncio.Future[list[Scored]]]]
        self._batches = deque()
        self._held = 0  # answers queued or in a batch under way
        self._due = False
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.failed = False

    @property
    def off_loop(self) -> bool:
        """Whether answers are scored in worker processes."""
        return self._pool is not None

    def put(self, case: Case, answer: Answer) -> None:
        """Queue an answer, to be scored after the event loop's current pass."""
        self._queued.append((case, answer))
        self._held += 1
        self._update()
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    async def room(self) -> None:
        """Wait while ``BACKLOG`` answers wait to be scored (or until scoring failed)."""
        await self._room.wait()

    async def drain(self) -> None:
        """Wait until every queued answer is scored and recorded."""
        await self._idle.wait()

    def _dispatch(self) -> None:
        self._due = False
        try:
            if self._pool is None:
                while self._queued:
                    case, answer = self._queued.popleft()
                    self._held -= 1
                    self._take(case, answer, self._score_here(case, answer))
                self._after()
            else:
                self._send()
        except Exception as exc:
            self._fail(exc)
        self._update()

    def _send(self) -> None:
        """Hand queued answers to the worker processes, keeping each of them busy with a
        batch and one more waiting."""
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        if self._scorer is None:
            self._scorer = pickle.dumps(self._evaluation.scorer)
        while self._queued and len(self._batches) < self._in_flight:
            batch = [self._queued.popleft() for _ in range(min(BATCH, len(self._queued)))]
            cases = [
                (case.expected, _attempts(predictions))
                for case, (predictions, error) in batch
                if error is None
            ]
            scoring = loop.run_in_executor(self._pool, score_cases, self._scorer, cases)
            self._batches.append((batch, scoring))
            scoring.add_done_callback(self._collect)

    def _collect(self, _: object) -> None:
        """Record the batches scored so far, in the order they were sent."""
        try:
            while self._batches and self._batches[0][1].done():
                batch, scoring = self._batches.popleft()
                self._held -= len(batch)
                if scoring.cancelled():
                    continue
                if (error := scoring.exception()) is not None:
                    self._fail(error)
                    continue
                scored = iter(scoring.result())
                for case, answer in batch:
                    self._take(case, answer, None if answer[1] is not None else next(scored))
            self._after()
            self._send()
        except Exception as exc:
            self._fail(exc)
        self._update()

    def score_now(self) -> None:
        """Score and record every answer not recorded yet, here and now: for a run that
        stops (the worker processes may be busy with another run, or gone). A batch whose
        scoring failed is left out, as its error already stops the run."""
        pending: list[tuple[Case, Answer]] = []
        for batch, scoring in self._batches:
            if scoring.done() and not scoring.cancelled() and scoring.exception() is not None:
                continue
            scoring.cancel()
            pending.extend(batch)
        pending.extend(self._queued)
        self._batches.clear()
        self._queued.clear()
        self._held = 0
        self._update()
        for case, answer in pending:
            self._take(case, answer, self._score_here(case, answer))

    def _score_here(self, case: Case, answer: Answer) -> Scored | None:
        predictions, error = answer
        if error is not None:
            return None
        return self._evaluation.scorer.score(case.expected, _attempts(predictions))

    def _fail(self, error: BaseException) -> None:
        self.failed = True
        self._on_error(error)

    def _update(self) -> None:
        if self._held < BACKLOG or self.failed:
            self._room.set()
        else:
            self._room.clear()
        if self._held == 0:
            self._idle.set()
        else:
            self._idle.clear()


def _attempts(predictions: list[Prediction]) -> list[Attempt]:
    return [Attempt(p.value, p.scores, p.judged) for p in predictions]
