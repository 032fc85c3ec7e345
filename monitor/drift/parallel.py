"""Running the engine's independent pieces of work on a thread pool.

Sorting, searching, bin counting and random draws run in numpy without the GIL, so columns
(and blocks of null replicates) proceed in parallel on threads; no process pool, no copies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_all(jobs: Sequence[Callable[[], T]], workers: int | None) -> list[T]:
    """The results of zero-argument ``jobs``, in job order, computed on up to ``workers``
    threads (None: one per CPU); a single job or worker runs inline."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(lambda job: job(), jobs))
