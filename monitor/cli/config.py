"""``monitor check-config``: validate a configuration file, read every dataset once, and
summarise it.

Each suite's dataset is read by the run's own reader (``open_dataset``), so a file that
would fail the first run (duplicate or missing ids, a missing field, a bad JSON line, a
file that is not UTF-8 or is empty) fails here, with the same message, file and line.
Every problem is printed, one a line, and the exit code is 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli.common import EXIT_USAGE, load
from monitor.durations import format_duration


@click.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a configuration file, read every dataset once, and summarise it."""
    from monitor.runs.datasets import dataset_problems

    config = load(config_path)
    problems = dataset_problems(config.suites)
    for problem in problems:
        click.echo(f"{config_path}: {problem}", err=True)
    if problems:
        sys.exit(EXIT_USAGE)
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
