"""``monitor check-config``: validate a configuration file and summarise it."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import load
from monitor.durations import format_duration


@click.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a configuration file and summarise it."""
    config = load(config_path)
    scheduled = sum(1 for suite, _ in config.jobs() if suite.schedule is not None)
    click.echo(f"{config_path}: OK")
    click.echo(
        f"  models: {len(config.models)} ({', '.join(m.name for m in config.models) or 'none'})"
    )
    click.echo(
        f"  suites: {len(config.suites)} ({', '.join(s.name for s in config.suites) or 'none'})"
    )
    click.echo(f"  scheduled jobs (suite x model): {scheduled}")
    for suite in config.suites:
        if suite.schedule is not None:
            click.echo(
                f"    {suite.name}: {suite.schedule.describe()} on {', '.join(suite.models)}"
            )
    click.echo(
        f"  streams: {len(config.streams)} ({', '.join(s.name for s in config.streams) or 'none'})"
    )
    for stream in config.streams:
        window = stream.window
        cut = f"every {format_duration(window.every)}" if window.every else f"{window.rows} rows"
        when = stream.schedule.describe() if stream.schedule else "not scheduled"
        click.echo(
            f"    {stream.name}: {len(stream.drift_columns())} column(s) from "
            f"{stream.source.kind}, windows of {cut}, judged {when}"
        )
    click.echo(f"  store: {config.store.shown_url}")
    click.echo(f"  API: http://{config.server.host}:{config.server.port}")
