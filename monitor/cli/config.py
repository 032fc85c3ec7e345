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

from monitor.cli.common import CONFIG_HELP, EXIT_USAGE, load
from monitor.durations import format_duration


@click.command("check-config")
@click.option("-c", "--config", "config_option", type=click.Path(path_type=Path), help=CONFIG_HELP)
@click.argument("config_argument", type=click.Path(path_type=Path), required=False)
def check_config(config_option: Path | None, config_argument: Path | None) -> None:
    """Validate a configuration file, read every dataset once, and summarise it.

    The file is given with -c/--config PATH, as to every other command; the positional
    PATH of earlier versions is kept as an alias."""
    from monitor.runs.datasets import dataset_problems

    config_path = _one_path(config_option, config_argument)
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


def _one_path(option: Path | None, argument: Path | None) -> Path:
    """The configuration file, from ``-c PATH`` or the positional alias (not two)."""
    if option is not None and argument is not None and option != argument:
        raise click.UsageError(f"two configuration files: -c {option} and {argument}; give one")
    path = option or argument
    if path is None:
        raise click.UsageError("Missing option '-c' / '--config' (the configuration file).")
    return path
