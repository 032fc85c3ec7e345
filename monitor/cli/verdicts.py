"""``monitor verdicts list|show``: runs judged against their baselines (docs/verdicts.md)."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import EXIT_USAGE, config_option, echo_table, fail, load, ready_store
from monitor.records import Verdict


@click.group()
def verdicts() -> None:
    """List and show verdicts: a run against its baseline, metric by metric."""


@verdicts.command("list")
@config_option
@click.option("--suite", help="Only this suite.")
@click.option("--model", help="Only this model.")
@click.option("--run", "run_id", type=click.IntRange(min=1), help="Only the verdict of this run.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (as the API).")
def list_verdicts(
    config_path: Path,
    suite: str | None,
    model: str | None,
    run_id: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """List the latest verdicts, newest first (a header row, then one verdict a line)."""
    store = ready_store(load(config_path))
    try:
        found = store.verdicts.list_verdicts(suite=suite, model=model, run_id=run_id, limit=limit)
    finally:
        store.close()
    if as_json:
        from monitor.wire.verdicts import VerdictOut

        for v in found:
            click.echo(VerdictOut.of(v).model_dump_json())
        return
    echo_table(
        ("ID", "CREATED", "OUTCOME", "SUITE", "MODEL", "RUN", "BASELINE", "REASON"),
        (
            (
                v.id,
                v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                v.outcome,
                v.suite,
                v.model,
                v.run_id,
                v.baseline_run_id,
                v.reason,
            )
            for v in found
        ),
    )


@verdicts.command("show")
@config_option
@click.argument("verdict_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="The verdict as one JSON object.")
def show_verdict(config_path: Path, verdict_id: int, as_json: bool) -> None:
    """One verdict: the outcome and why, every metric (and slice) with its change and
    interval, and the cases that changed."""
    store = ready_store(load(config_path))
    try:
        found = store.verdicts.get_verdict(verdict_id) if verdict_id < 2**31 else None
    finally:
        store.close()
    if found is None:
        fail(EXIT_USAGE, f"no verdict {verdict_id} in the store")
    if as_json:
        from monitor.wire.verdicts import VerdictOut

        click.echo(VerdictOut.of(found).model_dump_json(indent=2))
        return
    _show(found)


# P: one-sided in the direction the row is judged in, Holm-adjusted (docs/ci.md).
_METRIC_HEADER = (
    *("METRIC", "SLICE", "OUTCOME", "BASELINE", "NEW", "DELTA"),
    *("95% INTERVAL", "P (ADJUSTED)", "WHY"),
)


def _show(v: Verdict) -> None:
    click.echo(
        f"verdict {v.id}: {v.outcome}, run {v.run_id} of {v.suite} on {v.model}"
        f" against baseline run {v.baseline_run_id}"
    )
    click.echo(f"  {v.reason}")
    if v.dataset_changed:
        click.echo(
            "  the dataset changed since the baseline (compared with --allow-dataset-change)"
        )
    click.echo("")
    echo_table(
        _METRIC_HEADER,
        (
            (
                m.metric,
                m.slice or "-",
                m.outcome,
                f"{m.baseline:.4f}",
                f"{m.new:.4f}",
                f"{m.delta:+.4f}",
                f"[{m.lower:+.4f}, {m.upper:+.4f}]",
                f"{m.p_adjusted:.3g}",
                m.reason,
            )
            for m in v.metrics
        ),
    )
    if v.changes:
        click.echo("")
        echo_table(
            ("CASE", "CHANGE", "METRIC", "BASELINE", "NEW"),
            (
                (c.case_id, c.change, c.metric, f"{c.baseline_score:.4f}", f"{c.new_score:.4f}")
                for c in v.changes
            ),
        )
