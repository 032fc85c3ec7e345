"""The daemon's work in flight: the tasks shutdown gives ``shutdown_grace`` to finish.

Runs, stream windows, drift jobs and retention passes all join one set that
``Daemon._drain`` waits on and then cancels; :func:`tracked` is how a coroutine joins it
for as long as it works, whatever way it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["InFlight", "tracked"]

InFlight = set[asyncio.Task[object]]


@contextlib.contextmanager
def tracked(inflight: InFlight) -> Iterator[None]:
    """Count the current task in ``inflight`` until the block ends."""
    task = asyncio.current_task()
    assert task is not None
    inflight.add(task)
    try:
        yield
    finally:
        inflight.discard(task)
