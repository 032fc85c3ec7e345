"""The store's metric families, kept between scrapes until the store changes.

Every value the ``StoreCollector`` exports is a function of what is stored (the clock only
decides when an ad-hoc series ends, ``adhoc_series_ttl``), so a scrape that comes before any
new write can be answered from the families the last scrape read: the same numbers, without
the queries. The snapshot is dropped when this process commits a write
(``Store.write_generation``), and in any case after ``max_age`` seconds, which bounds how
stale a value written by another replica, a store that stopped answering
(``monitor_store_up``), or an ad-hoc series past its TTL can be.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["SnapshotCollector"]

DEFAULT_MAX_AGE = 5.0


class Generations(Protocol):
    """A store's ``write_generation``: all the snapshot needs of it."""

    @property
    def write_generation(self) -> int: ...


class SnapshotCollector(Collector):
    """``inner``'s families, re-read only after a write to ``store`` or ``max_age``."""

    def __init__(
        self,
        inner: Collector,
        store: Generations,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self._store = store
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._families: list[Metric] | None = None
        self._generation = -1
        self._taken_at = float("-inf")

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the store

    def collect(self) -> Iterable[Metric]:
        with self._lock:  # concurrent scrapes wait for one read instead of doing two
            # Read the generation first: a write committed while collecting moves it
            # again, so the next scrape reads anew.
            generation = self._store.write_generation
            now = self._clock()
            stale = generation != self._generation or now - self._taken_at >= self._max_age
            if self._families is None or stale:
                self._families = list(self._inner.collect())
                self._generation, self._taken_at = generation, now
            return list(self._families)
