"""``monitor run`` and ``monitor demo``: the daemon, on a configuration or on the bundled demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import (
    EXIT_OK,
    EXIT_STARTUP,
    config_option,
    duration_option,
    fail,
    load,
    serve,
    setup_logging,
)
from monitor.errors import StartupError


@click.command()
@config_option
def run(config_path: Path) -> None:
    """Run the daemon on a configuration file until SIGINT or SIGTERM."""
    config = load(config_path)
    setup_logging(config.log.level)
    from monitor.daemon.lifecycle import Daemon

    serve(lambda: Daemon(config).serve())


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address of the daemon's HTTP API."
)
@click.option("--port", default=8787, show_default=True, help="Port of the daemon's HTTP API.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("monitor-data"),
    show_default=True,
    help="Where the demo's SQLite store lives.",
)
@click.option("--every", default="30s", show_default=True, help="How often the demo suite runs.")
@click.option(
    "--degrade-after",
    default=None,
    help="Make the demo model worse, starting after this long (e.g. '5m'); off by default.",
)
@click.option(
    "--model-only",
    is_flag=True,
    help="Serve only the demo model, on --model-port, for 'monitor run -c config.example.toml'.",
)
@click.option("--model-port", default=8788, show_default=True, help="Port of the demo model.")
def demo(
    host: str,
    port: int,
    data_dir: Path,
    every: str,
    degrade_after: str | None,
    model_only: bool,
    model_port: int,
) -> None:
    """Start the daemon with a bundled model, suite and store: nothing else needed."""
    setup_logging("info")
    degrade = duration_option("--degrade-after", degrade_after)
    interval = duration_option("--every", every)
    if model_only:
        from monitor.demo import run_demo_model

        def model_ready(server: Any) -> None:
            click.echo(f"demo model listening on {server.url}/predict (Ctrl-C to stop)")

        try:
            run_demo_model(port=model_port, degrade_after=degrade, on_ready=model_ready)
        except StartupError as exc:
            fail(EXIT_STARTUP, f"cannot start: {exc}")
        sys.exit(EXIT_OK)

    from monitor.demo.launch import run_demo

    def ready(api: str, model: str) -> None:
        click.echo(
            f"\nmonitor demo is running (Ctrl-C to stop)\n"
            f"  metrics:  {api}/metrics\n"
            f"  runs:     {api}/v1/runs\n"
            f"  drift:    {api}/v1/streams/wine-traffic/reports\n"
            f"  API docs: {api}/docs\n"
            f"  model:    {model}/predict\n"
            f"  store:    {data_dir / 'monitor.db'}\n"
            f"The suite runs now and every {every}.\n"
        )

    assert interval is not None
    serve(
        lambda: run_demo(
            host=host,
            port=port,
            data_dir=data_dir,
            every=interval,
            degrade_after=degrade,
            on_ready=ready,
        )
    )
