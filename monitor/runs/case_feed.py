"""Hand a run's cases to its workers as they need them, reading the dataset ahead a little.

The dataset is read in a worker thread a chunk of cases at a time, so parsing rows never
blocks the event loop, and a new chunk is read when fewer than half a chunk is left. The
cases read but not yet handed to a worker are therefore fewer than ``lookahead`` (one and a
half chunks) at any time: together with the cases being asked, a run holds at most the
model's concurrency plus ``lookahead`` cases, whatever the size of its dataset.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Generator
from itertools import islice

from monitor.records import Case

CHUNK = 64
"""Cases read from the dataset at a time."""

_Chunk = tuple[list[Case], Exception | None]
"""Cases read, and the error that stopped the read early."""


class CaseFeed:
    """The run's cases, one ``await next()`` at a time, in dataset order.

    ``next`` returns None once every case was handed out. When reading fails (a
    ``DatasetError``: say the file changed during the run), the cases read before the
    failure are still handed out, then ``next`` returns None and ``error`` holds the
    failure, so workers finish the cases they have and the run can then fail with it.
    ``close`` stops reading and closes the dataset's file.
    """

    def __init__(self, cases: Generator[Case, None, None], *, chunk: int = CHUNK) -> None:
        self._cases = cases
        self._chunk = chunk
        self._ready: deque[Case] = deque()
        self._fetch: asyncio.Future[_Chunk] | None = None
        self._exhausted = False
        self.error: Exception | None = None

    @property
    def lookahead(self) -> int:
        """An upper bound on the cases read but not yet handed out."""
        return self._chunk + self._chunk // 2

    async def next(self) -> Case | None:
        """The next case, or None when there are no more."""
        while not self._ready:
            if self._exhausted:
                return None
            fetch = self._fetch or self._start()
            # wait(), not await: a worker cancelled here must not cancel the read, which
            # the next caller (the deadline's drain) picks up.
            await asyncio.wait([fetch])
            self._collect(fetch)
        case = self._ready.popleft()
        if len(self._ready) < self._chunk // 2 and self._fetch is None and not self._exhausted:
            self._start()
        return case

    def close(self) -> None:
        """Stop reading and close the dataset: now, or when a read under way ends."""
        self._exhausted = True
        self._ready.clear()
        fetch, self._fetch = self._fetch, None
        if fetch is None:
            self._cases.close()
        else:
            fetch.add_done_callback(self._close_after)

    def _start(self) -> asyncio.Future[_Chunk]:
        self._fetch = asyncio.ensure_future(asyncio.to_thread(self._read))
        return self._fetch

    def _read(self) -> _Chunk:
        cases: list[Case] = []
        try:
            cases.extend(islice(self._cases, self._chunk))
        except Exception as exc:
            return cases, exc
        return cases, None

    def _collect(self, fetch: asyncio.Future[_Chunk]) -> None:
        if fetch is not self._fetch:
            return  # another worker took this chunk
        self._fetch = None
        cases, error = fetch.result()
        self._ready.extend(cases)
        if error is not None or not cases:
            self._exhausted = True
            self.error = error

    def _close_after(self, fetch: asyncio.Future[_Chunk]) -> None:
        if not fetch.cancelled():
            fetch.exception()  # retrieved: closing is all that is left to do
        self._cases.close()
