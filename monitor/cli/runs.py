"""``monitor runs list|show``: the latest runs in the store, and one run in full."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.cli.common import EXIT_USAGE, config_option, echo_table, fail, load, ready_store
from monitor.records import Run, RunStatus


@click.group()
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
    """List the latest runs, newest first (a header row, then one run a line)."""
    store = ready_store(load(config_path))
    try:
        found = store.runs.list_runs(
            suite=suite, model=model, status=RunStatus(status) if status else None, limit=limit
        )
    finally:
        store.close()
    if as_json:
        for r in found:
            click.echo(json.dumps(_summary_json(r)))
        return
    echo_table(
        ("ID", "FINISHED", "STATUS", "SUITE", "MODEL", "SCORES"),
        (
            (
                r.id,
                _when(r),
                r.status,
                r.suite,
                r.model,
                " ".join(f"{m.name}={m.value:.4f}" for m in r.metrics) or r.error or "",
            )
            for r in found
        ),
    )


@runs.command("show")
@config_option
@click.argument("run_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="The run as one JSON object (as the API).")
def show_run(config_path: Path, run_id: int, as_json: bool) -> None:
    """One run: status, times, dataset, every metric with its interval, operations,
    slices, group fairness measures, and the verdict it got."""
    store = ready_store(load(config_path))
    try:
        run = store.runs.get_run(run_id)
        verdicts = store.verdicts.list_verdicts(run_id=run_id, limit=1) if run is not None else []
    finally:
        store.close()
    if run is None:
        fail(EXIT_USAGE, f"no run {run_id} in the store")
    if as_json:
        from monitor.wire.runs import RunOut

        click.echo(RunOut.of(run).model_dump_json(indent=2))
        return
    from rich.console import Console

    from monitor.cli.bench import table

    duration = f"{run.duration_seconds:.1f} s" if run.duration_seconds is not None else "-"
    click.echo(f"run {run.id}: {run.suite} on {run.model}, {run.status} ({run.trigger})")
    click.echo(f"  created   {run.created_at.isoformat()}")
    click.echo(f"  finished  {_when(run)} after {duration}")
    click.echo(f"  dataset   sha256 {run.dataset_sha256}")
    if run.model_version is not None:
        click.echo(f"  version   {run.model_version} (from the model's registry alias)")
    if run.error:
        click.echo(f"  error     {run.error}")
    if verdicts:
        v = verdicts[0]
        click.echo(
            f"  verdict   {v.outcome} against run {v.baseline_run_id}"
            f" (monitor verdicts show {v.id}): {v.reason}"
        )
    Console().print(table([run]))
    for f in run.fairness:
        bounds = "" if f.lower is None or f.upper is None else f" [{f.lower:.4g}, {f.upper:.4g}]"
        click.echo(f"  fairness  {f.measure} over {f.groups}: {f.value:.4g}{bounds} (n={f.n})")


def _when(run: Run) -> str:
    return run.finished_at.strftime("%Y-%m-%d %H:%M:%S") if run.finished_at else "-"


def _summary_json(r: Run) -> dict[str, object]:
    return {
        "id": r.id,
        "suite": r.suite,
        "model": r.model,
        "status": r.status,
        "finished_at": r.finished_at and r.finished_at.isoformat(),
        "metrics": {m.name: m.value for m in r.metrics},
        "error": r.error,
    }
