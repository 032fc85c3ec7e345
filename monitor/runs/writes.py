"""A run's batch writes: case results queued in order and stored by one task per run on
the runner's writer thread, each batch retried while the store is unreachable
(``monitor.runs.durability``).

The queue is bounded by ``limit`` case results (``[store] buffer_cases``): past it the
workers wait in ``keep_up`` and stop asking the model until the store takes a batch, so
an outage costs time, never memory without bound. A batch written again after a lost
connection is a replay: cases its first attempt may have committed are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from monitor.records import CaseResult
from monitor.runs.durability import StoreRetry
from monitor.store.parts import HasRuns


class BatchWrites:
    """One run's batch writes, tracked until stored: the run is finished only after every
    batch is, and a write that fails for good (``on_error``) ends it."""

    def __init__(
        self,
        writer: ThreadPoolExecutor,
        store: HasRuns,
        run_id: int,
        on_error: Callable[[BaseException], None],
        *,
        retry: StoreRetry,
        limit: int,
    ) -> None:
        self._writer = writer
        self._store = store
        self._run_id = run_id
        self._on_error = on_error
        self._retry = retry
        self._limit = limit
        self._queue: deque[tuple[list[CaseResult], asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self.held = 0
        """Case results queued and not yet stored."""
        self.error: BaseException | None = None

    def start(self, batch: list[CaseResult]) -> asyncio.Future[None]:
        """Queue ``batch``; the future is done once it is stored or the writes failed
        (then ``error`` says why: the future itself never raises)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            done.set_result(None)
            return done
        self._queue.append((batch, done))
        self.held += len(batch)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"writes of run {self._run_id}")
        return done

    async def _drain(self) -> None:
        while self._queue:
            batch, done = self._queue[0]
            try:
                await self._retry.call(functools.partial(self._append, batch))
            except Exception as exc:
                self.error = exc
                self._on_error(exc)
                for _, waiting in self._queue:
                    if not waiting.done():
                        waiting.set_result(None)
                self._progress.set()
                return
            self._queue.popleft()
            self.held -= len(batch)
            if not done.done():
                done.set_result(None)
            self._progress.set()

    def _append(self, batch: list[CaseResult], attempt: int) -> None:
        self._store.runs.append_cases(self._run_id, batch, replay=attempt > 0)

    async def keep_up(self) -> None:
        """Wait while ``limit`` case results wait for the store, rather than buffer
        without bound."""
        while self.held >= self._limit and self._queue and self.error is None:
            self._progress.clear()
            await self._progress.wait()

    async def ended(self) -> None:
        """Wait until every queued batch is stored, or the writes failed."""
        while self._queue and self.error is None:
            self._progress.clear()
            await self._progress.wait()

    async def settle(self) -> None:
        """``ended``, then raise why the writes failed, if they did."""
        await self.ended()
        if self.error is not None:
            raise self.error

    def unstored(self) -> int:
        """Case results queued and never stored (after the writes failed)."""
        return sum(len(batch) for batch, _ in self._queue)

    def write_now(self, batch: list[CaseResult]) -> None:
        """For a run being cancelled, which must not await: stop the queue's task, let
        the attempt under way on the writer thread end, then store what is still queued
        and ``batch`` in the calling thread, once, as a replay. Raises ``StoreError``
        when the store refuses or cannot be reached."""
        if self._task is not None:
            self._task.cancel()
        # The writer is one thread: once this no-op ran, no attempt of ours is under way.
        with contextlib.suppress(RuntimeError):  # the writer was shut down
            self._writer.submit(lambda: None).result()
        rest = [case for queued, _ in self._queue for case in queued]
        self._queue.clear()
        self.held = 0
        if rest or batch:
            self._store.runs.append_cases(self._run_id, [*rest, *batch], replay=True)
