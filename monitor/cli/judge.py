"""``monitor judge calibrate``: how well a suite's judges agree with human labels.

It judges the labelled answer of every case (see ``monitor.runs.calibration``) and
prints, per judge metric, accuracy, Cohen's kappa and/or Spearman's rho with 95% intervals,
the confusion matrix, and what judging cost. Nothing is stored.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import EXIT_STARTUP, EXIT_USAGE, config_option, fail, load, setup_logging
from monitor.errors import DatasetError, MonitorError

if TYPE_CHECKING:
    from monitor.runs.calibration import SuiteCalibration
    from monitor.scoring.calibration import Estimate


@click.group("judge")
def judge() -> None:
    """LLM judges: check them against people."""


@judge.command("calibrate")
@config_option
@click.option("--suite", "suite_name", required=True, help="The suite whose judges to check.")
@click.option(
    "--answer", default="answer", show_default=True, help="The field of the labelled answer."
)
@click.option("--human", default="human", show_default=True, help="The field of the human label.")
@click.option("--json", "json_output", is_flag=True, help="Print the results as one JSON document.")
def calibrate_command(
    config_path: Path, suite_name: str, answer: str, human: str, json_output: bool
) -> None:
    """Judge every labelled answer of a suite and report agreement with the labels.

    Exit code 2 for a usage, configuration or dataset error (an off-scale label names
    its file and case), 3 when a judge cannot be reached.
    """
    import asyncio

    from monitor.runs.calibration import calibrate_suite

    config = load(config_path)
    setup_logging("warning")
    suite = next((s for s in config.suites if s.name == suite_name), None)
    if suite is None:
        known = ", ".join(s.name for s in config.suites) or "none"
        raise click.BadParameter(
            f"no suite {suite_name!r} (defined: {known})", param_hint="--suite"
        )
    try:
        result = asyncio.run(calibrate_suite(config, suite, answer=answer, human=human))
    except (ValueError, DatasetError) as exc:
        fail(EXIT_USAGE, str(exc))
    except MonitorError as exc:
        fail(EXIT_STARTUP, str(exc))
    if json_output:
        click.echo(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        click.echo(render(result))


def render(result: SuiteCalibration) -> str:
    """The calibration as text, one block per judge metric."""
    lines = [f"suite {result.suite}, dataset {result.dataset_sha256[:12]}"]
    usage = {u.metric: u for u in result.usage}
    for c in result.metrics:
        u = usage[c.metric]
        lines += [
            "",
            f"{c.metric} (judge {u.judge}, prompt {u.prompt_sha256[:12]}): {c.n} labelled"
            f" cases, {result.unlabelled[c.metric]} without a label or a judge score",
            f"  accuracy         {_estimate(c.accuracy)}",
            f"  Cohen's kappa    {_estimate(c.kappa)}"
            + (f" ({c.kappa_weights}-weighted)" if c.kappa_weights else ""),
            f"  Spearman's rho   {_estimate(c.spearman)}",
            f"  mean |judge - human|  {c.mean_abs_difference:.4g}",
        ]
        if c.sensitivity is not None and c.specificity is not None:
            lines.append(
                f"  sensitivity      {_estimate(c.sensitivity)}\n"
                f"  specificity      {_estimate(c.specificity)}"
            )
        if c.confusion:
            width = max(len(_label(v)) for v in c.labels) + 2
            lines.append("  confusion (rows: people, columns: judge)")
            lines.append("  " + " " * width + "".join(f"{_label(v):>{width}}" for v in c.labels))
            for value, row in zip(c.labels, c.confusion, strict=True):
                lines.append(f"  {_label(value):>{width}}" + "".join(f"{k:>{width}}" for k in row))
        cost = "unknown" if u.cost is None else f"{u.cost:.4f} {u.currency}"
        lines.append(f"  judge requests {u.requests}, judge errors {u.errors}, cost {cost}")
    return "\n".join(lines)


def _estimate(e: Estimate | None) -> str:
    if e is None:
        return "n/a"
    if e.lower is None or e.upper is None:
        return f"{e.value:.3f}"
    return f"{e.value:.3f} [{e.lower:.3f}, {e.upper:.3f}]"


def _label(value: Any) -> str:
    return f"{value:g}"
