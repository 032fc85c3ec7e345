"""A micro-batcher: many single-case calls become few multi-row requests.

The runner asks an adapter for one case at a time and keeps every case in flight at once.
Protocols that score many rows per request (MLflow, Open Inference Protocol v2) put each
case's row into a ``MicroBatcher``, which sends a batch as soon as ``size`` rows wait or
``linger`` has passed since the first of them, and hands each caller its own answer. The
runner never sees batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from monitor.errors import AdapterError

Row = TypeVar("Row")
Answer = TypeVar("Answer")


class MicroBatcher(Generic[Row, Answer]):
    """Collects rows into batches for ``send``, which returns one answer per row (in
    order) and the request's latency.

    A batch that fails fails each of its callers with the same error kind; an answer count
    that differs from the row count is ``bad_response`` for every row of the batch.
    """

    def __init__(
        self,
        send: Callable[[list[Row]], Awaitable[tuple[Sequence[Answer], float]]],
        *,
        size: int,
        linger: float,
    ) -> None:
        self._send = send
        self._size = size
        self._linger = linger
        self._pending: list[tuple[Row, asyncio.Future[tuple[Answer, float]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, row: Row) -> tuple[Answer, float]:
        """Queue ``row``; returns its answer and the latency of the request that carried it."""
        future: asyncio.Future[tuple[Answer, float]] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if len(self._pending) >= self._size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._flush)
        return await future

    def _flush(self) -> None:
        """Send every full batch waiting, and what is left once the linger is over."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            # Callers cancelled while waiting (the run was stopped) are not sent.
            batch = [(row, future) for row, future in batch if not future.done()]
            if batch:
                task = asyncio.get_running_loop().create_task(self._run(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if 0 < len(self._pending) < self._size:
                self._timer = asyncio.get_running_loop().call_later(self._linger, self._flush)
                break

    async def _run(self, batch: list[tuple[Row, asyncio.Future[tuple[Answer, float]]]]) -> None:
        try:
            answers, latency = await self._send([row for row, _ in batch])
        except AdapterError as exc:
            _fail(batch, exc.kind, str(exc))
            return
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # an adapter bug must not leave callers waiting forever
            _fail(batch, "bad_response", f"the batch failed: {type(exc).__name__}")
            return
        if len(answers) != len(batch):
            _fail(
                batch,
                "bad_response",
                f"the answer holds {len(answers)} predictions for a batch of {len(batch)} rows",
            )
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result((answer, latency))

    async def aclose(self) -> None:
        """Cancel batches in flight (their callers see ``CancelledError``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, future in self._pending:
            future.cancel()
        self._pending = []


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], kind: Any, message: str) -> None:
    # A fresh exception per caller: one instance raised in many tasks would share (and
    # grow) one traceback.
    for _, future in batch:
        if not future.done():
            future.set_exception(AdapterError(kind, message))
