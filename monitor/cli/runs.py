"""``monitor runs list``: the latest runs in the store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from monitor.cli.common import EXIT_STARTUP, config_option, fail, load, open_store
from monitor.records import RunStatus


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
    """List the latest runs, newest first."""
    config = load(config_path)
    store = open_store(config)
    try:
        reason = store.check_ready()
        if reason is not None:
            fail(EXIT_STARTUP, reason)
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
