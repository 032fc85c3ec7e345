"""Progress of a run on stderr, for ``bench`` and ``gate``: cases done of the total, the
rate in cases per second and the time left.

Shown when stderr is a terminal, or when ``--progress`` asks for it; ``--no-progress``
turns it off. On a terminal it is rich's live bar; anywhere else (a CI log) one plain line
every ``every`` seconds and one at the end, because a log keeps every redraw of a bar.
Machine output (``--json``, the verdict) stays alone on stdout either way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.progress import Task
    from rich.text import Text

Advance = Callable[[int, int], None]

progress_option = click.option(
    "--progress/--no-progress",
    "show_progress",
    default=None,
    help="Cases done, rate and time left on stderr (default: when stderr is a terminal).",
)


def wanted(show: bool | None, stream: IO[str] | None = None) -> bool:
    """Whether to show progress: as asked, else when ``stream`` (stderr) is a terminal."""
    if show is not None:
        return show
    target = stream if stream is not None else sys.stderr
    return bool(getattr(target, "isatty", lambda: False)())


def line(label: str, done: int, total: int, elapsed: float) -> str:
    """``label: 30/120 cases, 4.2 cases/s, 0:00:21 left``; the rate and the time left
    once a case is done."""
    head = f"{label}: {done}/{total} cases"
    if done <= 0 or elapsed <= 0:
        return head
    rate = done / elapsed
    left = timedelta(seconds=round((total - done) / rate)) if total >= done else None
    return f"{head}, {rate:.1f} cases/s" + (f", {left} left" if left is not None else "")


@contextmanager
def case_progress(
    label: str,
    show: bool,
    *,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    every: float = 10.0,
) -> Iterator[Advance | None]:
    """A ``progress(done, total)`` callback for ``Runner.run`` while the block runs, or
    None when ``show`` is false."""
    target = stream if stream is not None else sys.stderr
    if not show:
        yield None
    elif getattr(target, "isatty", lambda: False)():
        with _bar(label, target) as advance:
            yield advance
    else:
        yield from _lines(label, target, clock, every)


def _lines(
    label: str, target: IO[str], clock: Callable[[], float], every: float
) -> Iterator[Advance]:
    start = clock()
    shown = start
    latest = (0, 0)

    def advance(done: int, total: int) -> None:
        nonlocal shown, latest
        latest = (done, total)
        now = clock()
        if now - shown >= every and done < total:
            shown = now
            print(line(label, done, total, now - start), file=target, flush=True)

    try:
        yield advance
    finally:
        if latest[1]:
            print(line(label, *latest, clock() - start), file=target, flush=True)


@contextmanager
def _bar(label: str, target: IO[str]) -> Iterator[Advance]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Cases per second, as rich measures it over its recent samples."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} cases/s")

    columns: list[Any] = [
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=Console(file=target), transient=False) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
