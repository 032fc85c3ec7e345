"""What every command shares: the exit codes, ``-c/--config``, loading the configuration,
opening the store, running an event loop, failing with a message.

Exit codes:
    0  success
    2  usage or configuration error (every problem printed, one line each)
    3  start-up or infrastructure failure (store unreachable, port in use, ...)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor.daemon.heap import freeze_startup_objects
from monitor.durations import parse_duration
from monitor.errors import ConfigError, MonitorError, StartupError

if TYPE_CHECKING:
    from monitor.config import Config

EXIT_OK, EXIT_USAGE, EXIT_STARTUP = 0, 2, 3

CONFIG_HELP = "Path of the TOML configuration file."
config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help=CONFIG_HELP,
)


def load(path: Path) -> Config:
    """The configuration at ``path``; every problem printed, one per line, and exit 2."""
    from monitor.config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        sys.exit(EXIT_USAGE)


def open_store(config: Config) -> Any:
    """The configured store, opened (not migrated); exit 3 when it cannot be reached."""
    from monitor.store import Store

    try:
        return Store(config.store.effective_url)
    except MonitorError as exc:
        fail(EXIT_STARTUP, str(exc))


def ready_store(config: Config) -> Any:
    """The configured store, migrated and answering; exit 3 with the reason otherwise."""
    store = open_store(config)
    reason = store.check_ready()
    if reason is not None:
        store.close()
        fail(EXIT_STARTUP, reason)
    return store


def serve(start: Callable[[], Any]) -> NoReturn:
    """Run ``start()`` in a new event loop until it returns, then exit 0 (3 when it could
    not start). Start-up's objects are frozen first (``monitor.daemon.heap``)."""
    freeze_startup_objects()
    try:
        import asyncio

        asyncio.run(start())
    except StartupError as exc:
        fail(EXIT_STARTUP, f"cannot start: {exc}")
    sys.exit(EXIT_OK)


def duration_option(name: str, value: str | None) -> Any:
    """``value`` (``"30s"``, ``"5m"``) as a ``timedelta``; a usage error naming ``name``."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def fail(code: int, message: str) -> NoReturn:
    """Print ``monitor: message`` on stderr and exit with ``code``."""
    click.echo(f"monitor: {message}", err=True)
    sys.exit(code)


def write_report(path: Path | None, text: str) -> None:
    """Write a report the user asked for (``--report-md`` and the like; nothing when
    ``path`` is None); a path that cannot be written is a usage error naming it."""
    if path is not None:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(EXIT_USAGE, f"cannot write {path}: {exc.strerror or exc}")


def echo_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print ``rows`` under ``header`` in aligned columns on stdout (the last column is not
    padded, so a long summary does not push the others); nothing when there are no rows,
    so a script that counts lines counts rows."""
    cells = [[str(cell) for cell in row] for row in rows]
    if not cells:
        return
    lines = [list(header), *cells]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        click.echo("  ".join([*padded, line[-1]]).rstrip())


# Warnings that repeat for as long as a condition lasts (a run longer than its interval, a
# store that is slow for an hour): the template, and how many of its arguments say which
# job it is about.
_REPEATING = {
    'Execution of job "%s" skipped: maximum number of running instances reached (%d)': 1,
    'Run time of job "%s" was missed by %s': 1,
    "suite %s on model %s: slot skipped, the previous run is still going": 2,
}


class RepeatsOnce(logging.Filter):
    """Let the first of a repeating warning through per job, then one an ``every`` with
    the count of those held back; the rest are dropped (all pass at level debug)."""

    def __init__(
        self,
        every: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        templates: Mapping[str, int] = _REPEATING,
    ) -> None:
        super().__init__()
        self.every, self.clock, self.templates = every, clock, templates
        self.shown: dict[tuple[str, ...], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        arity = self.templates.get(str(record.msg))
        if arity is None or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = (str(record.msg), *(str(arg) for arg in args[:arity]))
        now = self.clock()
        last = self.shown.get(key)
        if last is not None and now - last[0] < self.every:
            self.shown[key] = (last[0], last[1] + 1)
            return False
        self.shown[key] = (now, 0)
        if last is None:
            note = "logged again at most once an hour; every time at log level debug"
        else:
            note = f"{last[1]} repeat(s) not logged since the last"
        record.msg = f"{record.msg} ({note})"
        return True


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``. At ``info`` the start-up is quiet: the migrations the
    store applies, the per-request chatter of httpx and the scheduler's per-job lines are
    shown only at ``debug``, and a warning that repeats while a condition lasts (a slot
    skipped, a run time missed) is shown once (``RepeatsOnce``)."""
    root = logging.getLogger()
    # As logging.basicConfig: a process whose logging is configured already (an embedding
    # application, pytest) keeps its handlers and level.
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler.addFilter(RepeatsOnce())
        root.addHandler(handler)
        root.setLevel(level.upper())
    debug = root.isEnabledFor(logging.DEBUG)
    # Per-request lines from the HTTP client would flood the log and show query strings,
    # which may carry keys; the scheduler's per-job lines repeat what the runner says.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "Running upgrade 0003 -> 0004" on every fresh store: how, not what, the daemon starts.
    logging.getLogger("alembic").setLevel(logging.DEBUG if debug else logging.WARNING)
