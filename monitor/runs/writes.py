"""A run's batch writes: case results stored on the runner's writer thread, at most
``WRITES_IN_FLIGHT`` under way before the workers wait for the store."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from monitor.records import CaseResult
from monitor.store import Store

WRITES_IN_FLIGHT = 2
"""Batch writes under way at which the workers wait for the store."""


class BatchWrites:
    """One run's batch writes, on its runner's writer thread, tracked until stored: the
    run is finished only after every batch is, and a failed write (``on_error``) ends
    it."""

    def __init__(
        self,
        writer: ThreadPoolExecutor,
        store: Store,
        run_id: int,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._writer = writer
        self._store = store
        self._run_id = run_id
        self._on_error = on_error
        self._writes: set[asyncio.Future[None]] = set()
        self._pending: set[concurrent.futures.Future[None]] = set()  # the same writes

    def start(self, batch: list[CaseResult]) -> asyncio.Future[None]:
        pending = self._writer.submit(self._store.append_cases, self._run_id, batch)
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
        if len(self._writes) >= WRITES_IN_FLIGHT:
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
            self._store.append_cases(self._run_id, batch)
