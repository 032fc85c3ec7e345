"""``monitor canary``: watch a live candidate against production and promote or roll back.

``monitor canary`` exit codes (see docs/ci.md, "Canary"):
    0  promote: not shown worse within ``--duration`` (or, early, shown not worse than
       ``--margin``)
    1  roll back: the candidate's accuracy is worse, with always-valid p <= ``--alpha``
    2  usage or configuration error (bad flags, the token refused, a stream without an
       accuracy)
    3  infrastructure error (the daemon unreachable, a stream missing, no labelled record
       of a model during the watch)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from monitor.cli.common import EXIT_USAGE, duration_option, fail, write_report

EXIT_INFRASTRUCTURE = 3


@click.command()
@click.option(
    "--remote",
    required=True,
    help="The daemon's URL (a token with the read scope in $MONITOR_TOKEN, when it needs one).",
)
@click.option(
    "--stream-production", "production", required=True, help="The production model's stream."
)
@click.option("--stream-candidate", "candidate", required=True, help="The candidate's stream.")
@click.option("--duration", required=True, metavar="DURATION", help="How long to watch ('10m').")
@click.option(
    "--interval", default="10s", show_default=True, metavar="DURATION", help="How often to look."
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="The test's error rate: the chance of a false roll-back of an equal candidate.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Promote early once the candidate is shown worse by less than this accuracy.",
)
@click.option(
    "--tau",
    type=click.FloatRange(min=0, min_open=True),
    default=0.05,
    show_default=True,
    help="The mixture's scale: the accuracy difference the test is tuned to find.",
)
@click.option("--report-md", type=click.Path(path_type=Path), help="Write the Markdown report.")
@click.option("--report-json", type=click.Path(path_type=Path), help="Write the JSON report.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write a JUnit XML report.")
def canary(
    remote: str,
    production: str,
    candidate: str,
    duration: str,
    interval: str,
    alpha: float,
    margin: float,
    tau: float,
    report_md: Path | None,
    report_json: Path | None,
    junit: Path | None,
) -> None:
    """Watch the candidate's stream against production's on the daemon for --duration and
    exit 0 (promote), 1 (roll back), 2 (usage error) or 3 (infrastructure error); it stops
    early when the sequential test is decisive."""
    import asyncio

    from monitor.gate import TOKEN_ENV
    from monitor.gate.canary import CanaryLook, CanaryReport, CanarySettings, watch
    from monitor.gate.canary_report import (
        render_canary_failure_markdown,
        render_canary_json,
        render_canary_junit,
        render_canary_markdown,
    )

    span, every = duration_option("--duration", duration), duration_option("--interval", interval)
    if span.total_seconds() <= 0 or every.total_seconds() <= 0:
        fail(EXIT_USAGE, "--duration and --interval must be positive")
    if production == candidate:
        fail(EXIT_USAGE, "--stream-production and --stream-candidate name the same stream")
    settings = CanarySettings(
        production,
        candidate,
        span.total_seconds(),
        every.total_seconds(),
        alpha=alpha,
        tau=tau,
        margin=margin,
    )

    def announce(look: CanaryLook) -> None:
        click.echo(
            f"monitor: canary {look.elapsed:.1f} s: candidate {look.correct_candidate}/"
            f"{look.n_candidate}, production {look.correct_production}/{look.n_production},"
            f" always-valid p {look.p_value:.4g}",
            err=True,
        )

    result = asyncio.run(
        watch(remote, os.environ.get(TOKEN_ENV) or None, settings, announce=announce)
    )
    if isinstance(result, CanaryReport):
        write_report(report_md, render_canary_markdown(result))
        write_report(report_json, render_canary_json(result))
        write_report(junit, render_canary_junit(result))
        click.echo(result.summary)
        sys.exit(result.exit_code)
    if result.exit_code == EXIT_INFRASTRUCTURE:
        write_report(
            report_md, render_canary_failure_markdown(production, candidate, result.message)
        )
    fail(result.exit_code, result.message)


__all__ = ["canary"]
