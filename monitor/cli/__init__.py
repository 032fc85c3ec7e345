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
from typing import TYPE_CHECKING, Any, NoReturn

import click

from monitor import __version__
from monitor.cli.heap import freeze_startup_objects, own_process
from monitor.durations import format_duration, parse_duration
from monitor.errors import ConfigError, MonitorError, StartupError
from monitor.records import RunStatus

if TYPE_CHECKING:
    from monitor.config import Config

# Everything heavier than click and the shared vocabulary is imported by the command that
# needs it: `monitor --help`, `--version` and `check-config` start at once.

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
    own_process()
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
    from monitor.daemon.lifecycle import Daemon

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
            f"  drift:    {api}/v1/streams/wine-traffic/reports\n"
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

    from monitor.cli import bench as benchmark

    store = _open_store(config)
    try:
        store.upgrade()
        console = None if as_json else Console(stderr=True)
        freeze_startup_objects()
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


@cli.group()
def alerts() -> None:
    """Inspect alerts, send a test notification, silence direct sinks."""


@alerts.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include inactive and resolved alerts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_alerts(config_path: Path, show_all: bool, as_json: bool) -> None:
    """List alerts (pending and firing; with --all, every state), newest first."""
    config = _load(config_path)
    store = _ready_store(config)
    try:
        states = store.alert_states()
        dead = store.outbox_stats().by_status.get("dead", 0)
    finally:
        store.close()
    for s in states:
        if not show_all and s.phase not in ("pending", "firing"):
            continue
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "fingerprint": s.fingerprint,
                        "rule": s.rule,
                        "state": s.phase.value,
                        "severity": s.severity,
                        "labels": s.labels,
                        "summary": s.summary,
                        "updated_at": s.updated_at.isoformat(),
                    }
                )
            )
        else:
            when = s.updated_at.strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{s.phase.value:<9} {s.severity:<8} {when}  {s.rule}: {s.summary}")
    if dead and not as_json:
        click.echo(f"{dead} notification(s) in the dead-letter state (GET /v1/alerts)", err=True)


@alerts.command("test")
@config_option
@click.option("--sink", "sink_name", required=True, help="Name of the sink to send to.")
def test_alert(config_path: Path, sink_name: str) -> None:
    """Send a sample alert to one sink now, and say whether it was accepted."""
    config = _load(config_path)
    sink_config = config.alerts.sink(sink_name)
    if sink_config is None:
        known = ", ".join(s.name for s in config.alerts.sinks) or "none"
        _fail(EXIT_USAGE, f"unknown sink {sink_name!r}; configured: {known}")
    from monitor.notify.sending import send_test

    result = asyncio.run(send_test(sink_config, public_url=config.server.public_url))
    if not result.ok:
        _fail(EXIT_STARTUP, f"test alert not delivered: {result.error}")
    click.echo(f"test alert delivered to sink {sink_name!r}")


@alerts.command("silence")
@config_option
@click.option("--match", "matchers", multiple=True, required=True, help="LABEL=VALUE (repeatable).")
@click.option("--for", "duration", required=True, help="How long, e.g. '2h'.")
@click.option("--comment", default="", help="Why (shown in GET /v1/alerts).")
@click.option("--by", "created_by", default=None, help="Who (default: $USER).")
def silence(
    config_path: Path,
    matchers: tuple[str, ...],
    duration: str,
    comment: str,
    created_by: str | None,
) -> None:
    """Silence webhook and Slack sinks for alerts whose labels match, for a while.

    Alerts still change state and show in the API; Alertmanager sinks are not affected
    (silence those in Alertmanager)."""
    config = _load(config_path)
    length = _duration_option("--for", duration)
    parsed: dict[str, str] = {}
    for matcher in matchers:
        key, sep, value = matcher.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected LABEL=VALUE, got: {matcher!r}", param_hint="--match"
            )
        parsed[key.strip()] = value.strip()
    from monitor.clock import utc_now

    now = utc_now()
    store = _ready_store(config)
    try:
        silence_id = store.add_silence(
            matchers=parsed,
            starts_at=now,
            ends_at=now + length,
            created_by=created_by or os.environ.get("USER", "unknown"),
            comment=comment,
        )
    finally:
        store.close()
    until = (now + length).strftime("%Y-%m-%d %H:%M:%S UTC")
    click.echo(
        f"silence {silence_id} until {until}: " + ", ".join(f"{k}={v}" for k, v in parsed.items())
    )


def _ready_store(config: Config) -> Any:
    store = _open_store(config)
    reason = store.check_ready()
    if reason is not None:
        store.close()
        _fail(EXIT_STARTUP, reason)
    return store


@cli.command()
@config_option
@click.option("--stream", "stream_name", required=True, help="The [[streams]] entry to use.")
@click.option(
    "--reference",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Reference data (Parquet, CSV, JSONL); default: the stream's reference.",
)
@click.option(
    "--current",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Current data; default: the stream's latest complete window.",
)
@click.option("--html", type=click.Path(path_type=Path), help="Write Evidently's HTML report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def drift(
    config_path: Path,
    stream_name: str,
    reference: Path | None,
    current: Path | None,
    html: Path | None,
    as_json: bool,
) -> None:
    """Compare current data with a reference once and print the drift per column."""
    config = _load(config_path)
    stream = config.stream(stream_name)
    if stream is None:
        known = ", ".join(s.name for s in config.streams) or "none"
        _fail(EXIT_USAGE, f"--stream: unknown stream {stream_name!r}; defined: {known}")
    if html is not None and current is None:
        _fail(EXIT_USAGE, "--html needs --current")
    from monitor.streams import oneoff

    store = None if current is not None else _open_store(config)
    try:
        result = oneoff.compare_files(
            stream, reference=reference, current=current, store=store, html=html
        )
    except (MonitorError, ValueError, KeyError) as exc:
        _fail(EXIT_STARTUP if isinstance(exc, MonitorError) else EXIT_USAGE, str(exc))
    finally:
        if store is not None:
            store.close()
    click.echo(oneoff.dumps(stream, result) if as_json else oneoff.format_table(stream, result))


def _load(path: Path) -> Config:
    from monitor.config import load_config

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
    freeze_startup_objects()
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


# Commands kept in their own module; importing it registers them on ``cli``.
from monitor.cli import gate as _gate_commands  # noqa: E402,F401
