"""``monitor bench``: run one suite against one or more models now, in the foreground.

It uses the daemon's own ``Runner`` (same batching, scoring and store), shows each run's
progress with its rate and time left on stderr (``monitor.cli.progress``), and renders
the stored runs side by side: every metric with its 95% interval, the operational
metrics, and the largest gap between slices. ``as_json``
gives the same facts for machines. rich, the runner and the store are imported when the
command runs, not when the CLI starts.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import (
    EXIT_OK,
    EXIT_STARTUP,
    config_option,
    fail,
    load,
    open_store,
    setup_logging,
)
from monitor.cli.progress import case_progress, progress_option, wanted
from monitor.daemon.heap import freeze_startup_objects, preload
from monitor.errors import MonitorError
from monitor.records import Run, RunStatus, SliceGap

if TYPE_CHECKING:
    from rich.table import Table

    from monitor.config import Config, SuiteConfig
    from monitor.store.parts import RunsAndVerdicts


async def bench(
    config: Config,
    suite: SuiteConfig,
    models: Sequence[str],
    store: RunsAndVerdicts,
    *,
    show_progress: bool,
    tier: str = "",
) -> list[Run]:
    """Run ``suite`` (already configured as its ``tier``, if any) against each of
    ``models`` in turn; return the stored runs. With ``show_progress``, each run's cases,
    rate and time left go to stderr."""
    from monitor.runs.runner import Runner

    runner = Runner(store, durability=config.store, models=config.models)
    runs: list[Run] = []
    try:
        for name in models:
            model = config.model(name)
            with case_progress(f"{suite.name} x {name}", show_progress) as advance:
                runs.append(
                    await runner.run(suite, model, trigger="bench", progress=advance, tier=tier)
                )
    finally:
        await runner.aclose()
    return runs


def succeeded(runs: Sequence[Run]) -> bool:
    """Whether every run succeeded (the command's exit code depends on it)."""
    return all(run.status is RunStatus.SUCCEEDED for run in runs)


def table(runs: Sequence[Run]) -> Table:
    """Metrics (value and 95% interval) and operations, one column per model."""
    from rich.table import Table

    from monitor.scoring.evaluation import run_gaps

    result = Table(title=f"suite {runs[0].suite}" if runs else "no runs")
    result.add_column("")
    for run in runs:
        result.add_column(f"{run.model}\n(run {run.id})", justify="right")
    names = list(dict.fromkeys(m.name for run in runs for m in run.metrics))
    for name in names:
        cells = []
        for run in runs:
            metric = next((m for m in run.metrics if m.name == name), None)
            cells.append("-" if metric is None else _with_interval(metric.value, metric))
        result.add_row(name, *cells)
    details = {m.name: m.detail for run in runs for m in run.metrics if m.detail}
    if details:
        result.caption = "\n".join(f"{name}: {detail}" for name, detail in details.items())
    result.add_section()
    for label, cell in _OPERATION_ROWS:
        result.add_row(label, *(cell(run) for run in runs))
    for run in runs:
        for gap in run_gaps(run):
            result.add_row(
                f"gap {gap.metric} by {gap.field}",
                *(
                    f"{_gap(gap)} ({gap.worst} < {gap.best})" if other is run else ""
                    for other in runs
                ),
            )
    return result


def _with_interval(value: float, metric: Any) -> str:
    if metric.lower is None or metric.upper is None:
        return f"{value:.4f} (n={metric.n})"
    return f"{value:.4f} [{metric.lower:.4f}, {metric.upper:.4f}] (n={metric.n})"


def _gap(gap: SliceGap) -> str:
    if gap.lower is None or gap.upper is None:
        return f"{gap.gap:.4f}"
    return f"{gap.gap:.4f} [{gap.lower:.4f}, {gap.upper:.4f}]"


def _ops(run: Run, name: str, fmt: str) -> str:
    value = getattr(run.operations, name, None) if run.operations else None
    return "unknown" if value is None else format(value, fmt)


_OPERATION_ROWS: list[tuple[str, Any]] = [
    ("status", lambda run: str(run.status) + (f": {run.error}" if run.error else "")),
    ("cases (errors)", lambda run: f"{run.n_cases} ({run.n_errors})"),
    (
        "latency p50 / p95 / p99 s",
        lambda run: " / ".join(_ops(run, f"latency_{p}", ".3f") for p in ("p50", "p95", "p99")),
    ),
    ("throughput req/s", lambda run: _ops(run, "throughput", ".1f")),
    (
        "tokens prompt / completion",
        lambda run: f"{_ops(run, 'prompt_tokens', 'd')} / {_ops(run, 'completion_tokens', 'd')}",
    ),
    (
        "cost",
        lambda run: (
            f"{_ops(run, 'cost', '.6f')} {run.operations.currency or ''}".strip()
            if run.operations is not None and run.operations.cost is not None
            else "unknown"
        ),
    ),
]


def as_json(runs: Sequence[Run]) -> dict[str, Any]:
    """The runs as plain JSON data: metrics with intervals, operations, slices, gaps."""
    from monitor.scoring.evaluation import run_gaps

    return {
        "suite": runs[0].suite if runs else None,
        "runs": [
            {
                "id": run.id,
                "model": run.model,
                "status": str(run.status),
                "error": run.error,
                "n_cases": run.n_cases,
                "n_errors": run.n_errors,
                "dataset_sha256": run.dataset_sha256,
                "tier": run.tier,
                "metrics": [dataclasses.asdict(m) for m in run.metrics],
                "operations": dataclasses.asdict(run.operations) if run.operations else None,
                "slices": [dataclasses.asdict(s) for s in run.slices],
                "slice_gaps": [dataclasses.asdict(g) for g in run_gaps(run)],
            }
            for run in runs
        ],
    }


@click.command("bench")
@config_option
@click.option("--suite", "suite_name", required=True, help="The suite to run.")
@click.option(
    "--model",
    "model_names",
    multiple=True,
    help="A model to run it against; repeat for several (default: the suite's models).",
)
@click.option("--json", "json_output", is_flag=True, help="Print the results as one JSON document.")
@progress_option
@click.option(
    "--tier",
    default=None,
    help="Run the suite's tier of this name (a run to promote as that tier's baseline).",
)
def bench_command(
    config_path: Path,
    suite_name: str,
    model_names: tuple[str, ...],
    json_output: bool,
    show_progress: bool | None,
    tier: str | None,
) -> None:
    """Run a suite once now, in the foreground, and print its metrics side by side.

    Exit code 3 when a run did not succeed (endpoint unreachable, error budget exceeded).
    """
    config = load(config_path)
    setup_logging("warning")
    suite = next((s for s in config.suites if s.name == suite_name), None)
    if suite is None:
        known = ", ".join(s.name for s in config.suites) or "none"
        raise click.BadParameter(
            f"no suite {suite_name!r} (defined: {known})", param_hint="--suite"
        )
    if tier is not None:
        try:
            suite = suite.for_tier(tier)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--tier") from None
    names = list(model_names) or list(suite.models)
    defined = [m.name for m in config.models]
    for name in names:
        if name not in defined:
            raise click.BadParameter(
                f"no model {name!r} (defined: {', '.join(defined) or 'none'})",
                param_hint="--model",
            )
    from rich.console import Console

    store = open_store(config)
    try:
        store.upgrade()
        preload()
        freeze_startup_objects()
        import asyncio

        runs = asyncio.run(
            bench(config, suite, names, store, show_progress=wanted(show_progress), tier=tier or "")
        )
    except MonitorError as exc:
        fail(EXIT_STARTUP, str(exc))
    finally:
        store.close()
    if json_output:
        click.echo(json.dumps(as_json(runs), indent=2, default=str))
    else:
        Console().print(table(runs))
    sys.exit(EXIT_OK if succeeded(runs) else EXIT_STARTUP)
