"""``monitor db upgrade``: migrate the store to the latest schema."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import EXIT_STARTUP, config_option, fail, load, open_store
from monitor.errors import MonitorError


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command()
@config_option
def upgrade(config_path: Path) -> None:
    """Apply every pending migration to the configured store."""
    config = load(config_path)
    store = open_store(config)
    try:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
    except MonitorError as exc:
        fail(EXIT_STARTUP, str(exc))
    finally:
        store.close()
    click.echo(f"store at revision {after}" + ("" if before == after else f" (was {before})"))
