"""The ``monitor`` command. The only place that exits the process.

One module per command group, registered on ``cli`` below: ``daemon`` (``run``, ``demo``),
``config`` (``check-config``), ``db``, ``runs``, ``alerts``, ``drift``, ``bench``,
``baseline``, ``verdicts``, ``gate``, ``canary``, ``review``, ``audit``, ``judge`` and ``status``;
``common`` holds what they share, ``heap`` the process's garbage-collector policy.
Everything heavier than click and the shared vocabulary is imported by the command that
needs it: ``monitor --help``, ``--version`` and ``check-config`` start at once.

Exit codes:
    0  success
    2  usage or configuration error (every problem printed, one line each)
    3  start-up or infrastructure failure (store unreachable, port in use, ...); for
       ``bench``, a run that did not succeed (endpoint unreachable, error budget exceeded)
``monitor gate`` adds 1 (regressed or rejected) and 4 (awaiting review); see
``monitor.cli.gate``. ``monitor canary`` adds 1 (roll back); see ``monitor.cli.canary``.

May import every package; nothing imports it.
"""

from __future__ import annotations

import os

import click

from monitor import __version__
from monitor.cli import (
    alerts,
    audit,
    baseline,
    bench,
    canary,
    config,
    daemon,
    db,
    drift,
    gate,
    judge,
    review,
    runs,
    status,
    verdicts,
)
from monitor.daemon.heap import own_process


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


for command in (
    daemon.run,
    daemon.demo,
    bench.bench_command,
    config.check_config,
    db.db,
    runs.runs,
    alerts.alerts,
    drift.drift,
    baseline.baseline,
    verdicts.verdicts,
    gate.gate,
    canary.canary,
    review.review,
    audit.audit,
    judge.judge,
    status.status,
):
    cli.add_command(command)

__all__ = ["cli", "main"]
