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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor.daemon.heap import freeze_startup_objects
from monitor.durations import parse_duration
from monitor.errors import ConfigError, MonitorError, StartupError

if TYPE_CHECKING:
    from monitor.config import Config

EXIT_OK, EXIT_USAGE, EXIT_STARTUP = 0, 2, 3

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Path of the TOML configuration file.",
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


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``, with the per-request chatter of httpx and the scheduler
    held at warning."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Per-request lines from the HTTP client would flood the log and show query strings,
    # which may carry keys; the scheduler's per-job lines repeat what the runner says.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
