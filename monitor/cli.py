"""The ``monitor`` command. The only place that exits the process.

Exit codes:
    0  success
    2  usage or configuration error (every problem printed, one line each)
    3  start-up or infrastructure failure (store unreachable, port in use, ...); for
       ``bench``, a run that did not succeed (endpoint unreachable, error budget exceeded)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from monitor import __version__
from monitor.config import Config, load_config
from monitor.durations import parse_duration
from monitor.errors import ConfigError, MonitorError, StartupError
from monitor.records import RunStatus

EXIT_OK, EXIT_USAGE, EXIT_STARTUP = 0, 2, 3

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Path of the TOML configuration file.",
)


def main() -> None:
    """Entry point of the console script and of ``python -m monitor``."""
    # No dependency may call home: set the opt-outs before anything imports them.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    cli(prog_name="monitor")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """Keep deployed ML and LLM models honest: scheduled evaluations, drift, metrics."""


@cli.command()
@config_option
def run(config_path: Path) -> None:
    """Run the daemon on a configuration file until SIGINT or SIGTERM."""
    config = _load(config_path)
    _setup_logging(config.log.level)
    from monitor.daemon import Daemon

    _serve(lambda: Daemon(config).serve())


@cli.command()
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
    _setup_logging("info")
    degrade = _duration_option("--degrade-after", degrade_after)
    interval = _duration_option("--every", every)
    if model_only:
        from monitor.demo import run_demo_model

        def model_ready(server: Any) -> None:
            click.echo(f"demo model listening on {server.url}/predict (Ctrl-C to stop)")

        try:
            run_demo_model(port=model_port, degrade_after=degrade, on_ready=model_ready)
        except StartupError as exc:
            _fail(EXIT_STARTUP, f"cannot start: {exc}")
        sys.exit(EXIT_OK)

    from monitor.demo.launch import run_demo

    def ready(api: str, model: str) -> None:
        click.echo(
            f"\nmonitor demo is running (Ctrl-C to stop)\n"
            f"  metrics:  {api}/metrics\n"
            f"  runs:     {api}/v1/runs\n"
            f"  API docs: {api}/docs\n"
            f"  model:    {model}/predict\n"
            f"  store:    {data_dir / 'monitor.db'}\n"
            f"The suite runs now and every {every}.\n"
        )

    assert interval is not None
    _serve(
        lambda: run_demo(
            host=host,
            port=port,
            data_dir=data_dir,
            every=interval,
            degrade_after=degrade,
            on_ready=ready,
        )
    )


@cli.command()
@config_option
@click.option("--suite", "suite_name", required=True, help="The suite to run.")
@click.option(
    "--model",
    "model_names",
    multiple=True,
    help="A model to run it against; repeat for several (default: the suite's models).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON document.")
def bench(config_path: Path, suite_name: str, model_names: tuple[str, ...], as_json: bool) -> None:
    """Run a suite once now, in the foreground, and print its metrics side by side.

    Exit code 3 when a run did not succeed (endpoint unreachable, error budget exceeded).
    """
    config = _load(config_path)
    _setup_logging("warning")
    suite = next((s for s in config.suites if s.name == suite_name), None)
    if suite is None:
        known = ", ".join(s.name for s in config.suites) or "none"
        raise click.BadParameter(
            f"no suite {suite_name!r} (defined: {known})", param_hint="--suite"
        )
    names = list(model_names) or list(suite.models)
    defined = [m.name for m in config.models]
    for name in names:
        if name not in defined:
            raise click.BadParameter(
                f"no model {name!r} (defined: {', '.join(defined) or 'none'})",
                param_hint="--model",
            )
    from rich.console import Console

    from monitor import bench as benchmark

    store = _open_store(config)
    try:
        store.upgrade()
        console = None if as_json else Console(stderr=True)
        runs = asyncio.run(benchmark.bench(config, suite, names, store, console=console))
    except MonitorError as exc:
        _fail(EXIT_STARTUP, str(exc))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(benchmark.as_json(runs), indent=2, default=str))
    else:
        Console().print(benchmark.table(runs))
    sys.exit(EXIT_OK if benchmark.succeeded(runs) else EXIT_STARTUP)


@cli.command("check-config")
@click.argument("config_path", type=click.Path(path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a configuration file and summarise it."""
    config = _load(config_path)
    from monitor.store import redact_url

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
    click.echo(f"  store: {redact_url(config.store.effective_url)}")
    click.echo(f"  API: http://{config.server.host}:{config.server.port}")


@cli.group()
def db() -> None:
    """Manage the store's schema."""


@db.command()
@config_option
def upgrade(config_path: Path) -> None:
    """Apply every pending migration to the configured store."""
    config = _load(config_path)
    store = _open_store(config)
    try:
        before = store.current_revision()
        store.upgrade()
        after = store.current_revision()
    except MonitorError as exc:
        _fail(EXIT_STARTUP, str(exc))
    finally:
        store.close()
    click.echo(f"store at revision {after}" + ("" if before == after else f" (was {before})"))


@cli.group()
def runs() -> None:
    """Inspect runs in the store."""


@runs.command("list")
@config_option
@click.option("--suite", help="Only this suite.")
@click.option("--model", help="Only this model.")
@click.option("--status", type=click.Choice([s.value for s in RunStatus]), help="Only this status.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_runs(
    config_path: Path,
    suite: str | None,
    model: str | None,
    status: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List the latest runs, newest first."""
    config = _load(config_path)
    store = _open_store(config)
    try:
        reason = store.check_ready()
        if reason is not None:
            _fail(EXIT_STARTUP, reason)
        found = store.list_runs(
            suite=suite, model=model, status=RunStatus(status) if status else None, limit=limit
        )
    finally:
        store.close()
    for r in found:
        scores = " ".join(f"{m.name}={m.value:.4f}" for m in r.metrics)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": r.id,
                        "suite": r.suite,
                        "model": r.model,
                        "status": r.status,
                        "finished_at": r.finished_at and r.finished_at.isoformat(),
                        "metrics": {m.name: m.value for m in r.metrics},
                        "error": r.error,
                    }
                )
            )
        else:
            finished = r.finished_at.strftime("%Y-%m-%d %H:%M:%S") if r.finished_at else "-"
            click.echo(
                f"{r.id:>6}  {finished}  {r.status:<11} {r.suite} / {r.model}  "
                f"{scores or r.error or ''}"
            )


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        sys.exit(EXIT_USAGE)


def _open_store(config: Config) -> Any:
    from monitor.store import Store

    try:
        return Store(config.store.effective_url)
    except MonitorError as exc:
        _fail(EXIT_STARTUP, str(exc))


def _serve(start: Callable[[], Any]) -> NoReturn:
    try:
        asyncio.run(start())
    except StartupError as exc:
        _fail(EXIT_STARTUP, f"cannot start: {exc}")
    sys.exit(EXIT_OK)


def _duration_option(name: str, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=name) from None


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"monitor: {message}", err=True)
    sys.exit(code)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Per-request lines from the HTTP client would flood the log and show query strings,
    # which may carry keys; the scheduler's per-job lines repeat what the runner says.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
