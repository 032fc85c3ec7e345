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
    "--degrade-ramp",
    default="5m",
    show_default=True,
    help="How long the demo model takes to get from healthy to its worst (e.g. '20s').",
)
@click.option(
    "--recover-after",
    default=None,
    help="Make the demo model healthy again after this long from the start (e.g. '7m'),"
    " as a rollback would; needs --degrade-after, and must be later.",
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
    degrade_ramp: str,
    recover_after: str | None,
    model_only: bool,
    model_port: int,
) -> None:
    """Start the daemon with a bundled model, suite and store: nothing else needed.

    Every duration option takes seconds too ('--every 2s --degrade-after 3s
    --degrade-ramp 1s --recover-after 15s' tells the whole story in under a minute)."""
    setup_logging("info")
    degrade = duration_option("--degrade-after", degrade_after)
    interval = duration_option("--every", every)
    ramp = duration_option("--degrade-ramp", degrade_ramp)
    recover = duration_option("--recover-after", recover_after)
    if recover is not None and degrade is None:
        raise click.BadParameter("needs --degrade-after", param_hint="--recover-after")
    if recover is not None and recover <= degrade:
        raise click.BadParameter(
            f"must come after --degrade-after (got {recover_after!r} and {degrade_after!r})",
            param_hint="--recover-after",
        )
    schedule = {"degrade_after": degrade, "degrade_ramp": ramp, "recover_after": recover}
    if model_only:
        from monitor.demo import run_demo_model

        def model_ready(server: Any) -> None:
            click.echo(f"demo model listening on {server.url}/predict (Ctrl-C to stop)")

        try:
            run_demo_model(port=model_port, **schedule, on_ready=model_ready)
        except StartupError as exc:
            fail(EXIT_STARTUP, f"cannot start: {exc}")
        sys.exit(EXIT_OK)

    from monitor.demo.launch import DemoUrls, run_demo

    def ready(urls: DemoUrls) -> None:
        api = urls.api
        click.echo(
            f"\nmonitor demo is running (Ctrl-C to stop)\n"
            f"  metrics:  {api}/metrics\n"
            f"  runs:     {api}/v1/runs\n"
            f"  verdicts: {api}/v1/verdicts\n"
            f"  drift:    {api}/v1/streams/wine-traffic/reports\n"
            f"  alerts:   {api}/v1/alerts (delivered to {urls.receiver})\n"
            f"  API docs: {api}/docs\n"
            f"  model:    {urls.model}/predict\n"
            f"  store:    {data_dir / 'monitor.db'}\n"
            f"The suite runs now and every {every}.{_story(degrade_after, recover_after)}\n"
        )

    assert interval is not None
    serve(
        lambda: run_demo(
            host=host,
            port=port,
            data_dir=data_dir,
            every=interval,
            **schedule,
            on_ready=ready,
        )
    )


def _story(degrade_after: str | None, recover_after: str | None) -> str:
    """What the demo's schedule will do, for its start-up banner."""
    if degrade_after is None:
        return ""
    story = f"\nThe model starts to degrade {degrade_after} from now"
    if recover_after is not None:
        story += f" and recovers {recover_after} from now"
    return story + "."
