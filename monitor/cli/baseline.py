"""``monitor baseline promote|list|show``: pin a run as the golden baseline of its suite x
model, and read the promotion history (docs/verdicts.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import EXIT_USAGE, config_option, echo_table, fail, load, ready_store
from monitor.clock import utc_now
from monitor.records import Baseline


@click.group()
def baseline() -> None:
    """Pin, list and show golden baselines."""


@baseline.command("promote")
@config_option
@click.argument("run_id", type=int)
@click.option("--model", default=None, help="Pin it as another model's baseline (a role).")
@click.option("--reason", default="", help="Why (kept in the history).")
@click.option("--by", "promoted_by", default=None, help="Who (default: $USER).")
def promote(
    config_path: Path, run_id: int, model: str | None, reason: str, promoted_by: str | None
) -> None:
    """Make a succeeded run the baseline of its suite x model."""
    store = ready_store(load(config_path))
    who = promoted_by or os.environ.get("USER") or "cli"
    try:
        promoted = store.verdicts.promote_baseline(
            run_id, model=model, by=who, reason=reason, at=utc_now()
        )
    except LookupError as exc:
        fail(EXIT_USAGE, str(exc.args[0]))
    except ValueError as exc:
        fail(EXIT_USAGE, str(exc))
    finally:
        store.close()
    assert promoted is not None
    tier = f", tier {promoted.tier}" if promoted.tier else ""
    click.echo(
        f"run {run_id} is now the baseline of {promoted.suite} on {promoted.model}{tier}"
        f" (promotion {promoted.id})"
    )


@baseline.command("list")
@config_option
@click.option("--suite", help="Only this suite.")
@click.option("--model", help="Only this model.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_baselines(config_path: Path, suite: str | None, model: str | None, as_json: bool) -> None:
    """Every promotion, newest first; * marks the active baseline."""
    store = ready_store(load(config_path))
    try:
        found = store.verdicts.list_baselines(suite=suite, model=model)
    finally:
        store.close()
    if as_json:
        for b in found:
            click.echo(json.dumps(_baseline_json(b)))
        return
    echo_table(
        ("ACTIVE", "ID", "SUITE", "MODEL", "TIER", "RUN", "PROMOTED", "BY", "REASON"),
        (
            (
                "*" if b.active else "",
                b.id,
                b.suite,
                b.model,
                b.tier,
                b.run_id,
                b.promoted_at.strftime("%Y-%m-%d %H:%M:%S"),
                b.promoted_by,
                b.reason,
            )
            for b in found
        ),
    )


@baseline.command("show")
@config_option
@click.option("--suite", required=True, help="The suite.")
@click.option("--model", required=True, help="The model.")
@click.option("--tier", default="", help="The tier's baseline (default: no tier).")
def show_baseline(config_path: Path, suite: str, model: str, tier: str) -> None:
    """The active baseline of a suite x model (of a tier), with its scores."""
    store = ready_store(load(config_path))
    try:
        found = store.verdicts.active_baseline(suite, model, tier)
        run = store.runs.get_run(found.run_id) if found else None
    finally:
        store.close()
    if found is None or run is None:
        fail(EXIT_USAGE, f"{suite} on {model} has no baseline{f' of tier {tier}' if tier else ''}")
    click.echo(json.dumps(_baseline_json(found), indent=2))
    for metric in run.metrics:
        click.echo(f"  {metric.name} = {metric.value:.4f}  [{metric.lower}, {metric.upper}]")


def _baseline_json(b: Baseline) -> dict[str, Any]:
    return {
        "id": b.id,
        "suite": b.suite,
        "model": b.model,
        "run_id": b.run_id,
        "dataset_sha256": b.dataset_sha256,
        "promoted_at": b.promoted_at.isoformat(),
        "promoted_by": b.promoted_by,
        "reason": b.reason,
        "active": b.active,
        "tier": b.tier,
    }
