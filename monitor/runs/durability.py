"""A run's writes outlive a store outage: each is retried with capped exponential back-off
while the store is unreachable (``StoreUnavailable``), for up to ``[store] retry_for`` of
failures without a success between them. Past that the run gives up: ``GaveUp`` says why,
and the runner stores the run ``failed`` with that reason, retrying that last write until
the store answers.

Only ``StoreUnavailable`` is retried: a refusal (the run was finished elsewhere, a case id
twice) would be refused again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import timedelta
from typing import TypeVar

from monitor.durations import format_duration
from monitor.errors import StoreError, StoreUnavailable
from monitor.runs.outage import StoreOutage

T = TypeVar("T")

FIRST_BACKOFF = 0.1
"""Seconds before the first retry of a write."""
MAX_BACKOFF = 5.0
"""Seconds between retries at most: a store that is back is used within this."""


def retry_delay(attempt: int, *, jitter: float = 1.0) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): ``FIRST_BACKOFF * 2**(n-1)``
    capped at ``MAX_BACKOFF``, scaled by ``jitter`` in [0.5, 1] so the writes of many runs
    do not retry in step."""
    base: float = min(FIRST_BACKOFF * 2.0 ** max(attempt - 1, 0), MAX_BACKOFF)
    return base * min(max(jitter, 0.5), 1.0)


class GaveUp(StoreError):
    """The store stayed unreachable for longer than ``retry_for``: the run stops."""


class StoreRetry:
    """The retry state of one run's writes, shared by all of them: ``retry_for`` counts
    from the first failure after the last success, whichever write saw it."""

    def __init__(
        self,
        executor: Executor | None,
        *,
        retry_for: timedelta,
        outage: StoreOutage | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),
    ) -> None:
        self._executor = executor
        self._retry_for = retry_for.total_seconds()
        self._outage = outage
        self._monotonic = monotonic
        self._jitter = jitter
        self.failing_since: float | None = None
        self.attempts = 0
        """Failed attempts of every write of the run (for tests and logs)."""

    async def call(self, write: Callable[[int], T], *, forever: bool = False) -> T:
        """``write(attempt)`` on the executor (attempt 0, then 1, 2, ... on retries) until
        it succeeds. ``GaveUp`` once the store has failed for ``retry_for`` (never with
        ``forever``: for the run's last write, which must land when the store is back)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                result = await loop.run_in_executor(self._executor, write, attempt)
            except StoreUnavailable as exc:
                self._failed(exc)
                if not forever and self.expired():
                    raise GaveUp(self.reason(exc)) from exc
                attempt += 1
                await asyncio.sleep(retry_delay(attempt, jitter=self._jitter()))
                continue
            self._answered()
            return result

    def expired(self) -> bool:
        since = self.failing_since
        return since is not None and self._monotonic() - since >= self._retry_for

    def reason(self, error: BaseException) -> str:
        limit = format_duration(timedelta(seconds=self._retry_for))
        return f"the store was unreachable for longer than retry_for ({limit}): {error}"

    def _failed(self, error: StoreUnavailable) -> None:
        self.attempts += 1
        if self.failing_since is None:
            self.failing_since = self._monotonic()
        if self._outage is not None:
            self._outage.failed(error)

    def _answered(self) -> None:
        self.failing_since = None
        if self._outage is not None:
            self._outage.answered()
