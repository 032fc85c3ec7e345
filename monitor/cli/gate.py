"""``monitor gate``: run a suite against a model in CI and judge it against its baseline.

``monitor gate`` exit codes (see docs/ci.md):
    0  pass, improved or inconclusive (the report says how many cases would tell)
    1  regressed
    2  usage or configuration error (unknown suite or model, no baseline, the dataset
       changed since the baseline, a token without the scope)
    3  infrastructure error (the endpoint unreachable, the error budget exceeded, the
       store or the remote daemon unreachable)
A regression and a broken endpoint are never confused: a run that failed never gets a
verdict.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import EXIT_STARTUP, EXIT_USAGE, config_option, fail, load, ready_store
from monitor.clock import utc_now
from monitor.daemon.heap import freeze_startup_objects, preload
from monitor.records import Run, RunStatus

# The gate, the runner and the verdicts are imported by the commands that use them: the
# CLI must start at once for --help and check-config.
EXIT_INFRASTRUCTURE = EXIT_STARTUP  # the gate's 3: the endpoint, store or daemon failed

if TYPE_CHECKING:
    from monitor.config import AnyModelConfig, Config, SuiteConfig
    from monitor.runs.runner import Runner


@click.command()
@config_option
@click.option("--suite", "suite_name", required=True, help="The suite to run.")
@click.option("--model", "model_name", required=True, help="The model to judge.")
@click.option(
    "--baseline",
    "baseline_choice",
    default=None,
    help="A run id, or 'production' (default: the model's baseline, else production's).",
)
@click.option("--sample", type=click.IntRange(min=1), default=None, help="Run N sampled cases.")
@click.option("--report-md", type=click.Path(path_type=Path), help="Write the Markdown report.")
@click.option("--report-json", type=click.Path(path_type=Path), help="Write the JSON report.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write a JUnit XML report.")
@click.option(
    "--remote",
    default=None,
    help="Ask the daemon at this URL to do the run (token from $MONITOR_TOKEN).",
)
@click.option(
    "--allow-dataset-change",
    is_flag=True,
    help="Compare even if the dataset changed since the baseline.",
)
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait (--remote).")
def gate(
    config_path: Path,
    suite_name: str,
    model_name: str,
    baseline_choice: str | None,
    sample: int | None,
    report_md: Path | None,
    report_json: Path | None,
    junit: Path | None,
    remote: str | None,
    allow_dataset_change: bool,
    timeout: float,
) -> None:
    """Run a suite against a model, judge it against its baseline, and exit 0 (pass),
    1 (regressed), 2 (usage or config error) or 3 (infrastructure error)."""
    from monitor.gate import (
        GateReport,
        render_failure_markdown,
        render_json,
        render_junit,
        render_markdown,
    )

    if baseline_choice is not None and not (
        (baseline_choice.isascii() and baseline_choice.isdigit()) or baseline_choice == "production"
    ):
        fail(EXIT_USAGE, f"--baseline must be a run id or 'production', got {baseline_choice!r}")
    if remote is not None:
        # The daemon runs with its own configuration: the file (and the secrets it names)
        # need not be readable here.
        outcome = _remote(
            remote, suite_name, model_name, baseline_choice, sample, timeout, allow_dataset_change
        )
    else:
        outcome = _local(
            load(config_path),
            suite_name,
            model_name,
            baseline_choice,
            sample,
            allow_dataset_change,
        )
    if isinstance(outcome, GateReport):
        _write(report_md, render_markdown(outcome))
        _write(report_json, render_json(outcome))
        _write(junit, render_junit(outcome))
        click.echo(outcome.summary)
        sys.exit(outcome.exit_code)
    code, message, run = outcome
    if code == EXIT_INFRASTRUCTURE:
        _write(report_md, render_failure_markdown(suite_name, model_name, run, message))
    fail(code, message)


def _local(
    config: Config,
    suite_name: str,
    model_name: str,
    baseline_choice: str | None,
    sample: int | None,
    allow_dataset_change: bool,
) -> Any:
    from monitor.gate import GateReport
    from monitor.runs.runner import Runner
    from monitor.verdicts.service import VerdictError, find_baseline, judge_run
    from monitor.wire.runs import RunOut

    suite, model = _configured(config, suite_name, model_name, sample)
    store = ready_store(config)
    try:
        # Know the baseline before spending a run on it.
        try:
            reference = find_baseline(store, config, suite.name, model.name, baseline_choice)
        except VerdictError as exc:
            return EXIT_USAGE, str(exc), None
        preload()
        freeze_startup_objects()
        import asyncio

        runner = Runner(store, durability=config.store, models=config.models)
        run = asyncio.run(_run_once(runner, suite, model))
        if run.status != RunStatus.SUCCEEDED:
            reason = f"run {run.id} {run.status}: {run.error}"
            return EXIT_INFRASTRUCTURE, reason, RunOut.of(run)
        try:
            verdict = judge_run(
                store,
                config,
                run,
                at=utc_now(),
                baseline=reference,
                allow_dataset_change=allow_dataset_change,
            )
        except VerdictError as exc:
            return EXIT_USAGE, str(exc), RunOut.of(run)
        return GateReport.build(verdict, run, reference.run)
    finally:
        store.close()


def _configured(
    config: Config, suite_name: str, model_name: str, sample: int | None
) -> tuple[SuiteConfig, AnyModelConfig]:
    """The named suite (with ``--sample`` applied) and model; exit 2 when unknown."""
    suite = next((s for s in config.suites if s.name == suite_name), None)
    model = next((m for m in config.models if m.name == model_name), None)
    if suite is None:
        fail(EXIT_USAGE, f"no suite {suite_name!r} in the configuration")
    if model is None:
        fail(EXIT_USAGE, f"no model {model_name!r} in the configuration")
    if sample is not None:
        suite = suite.model_copy(update={"sample": sample})
    return suite, model


async def _run_once(runner: Runner, suite: SuiteConfig, model: AnyModelConfig) -> Run:
    try:
        return await runner.run(suite, model, trigger="gate")
    finally:
        await runner.aclose()


def _remote(
    url: str,
    suite: str,
    model: str,
    baseline_choice: str | None,
    sample: int | None,
    timeout: float,
    allow_dataset_change: bool,
) -> Any:
    from monitor.gate import TOKEN_ENV, GateReport, RemoteFailure, remote_report

    token = os.environ.get(TOKEN_ENV)
    if not token:
        fail(EXIT_USAGE, f"--remote needs a token with the write scope in ${TOKEN_ENV}")
    import asyncio

    result = asyncio.run(
        remote_report(
            url,
            token,
            suite,
            model,
            baseline=baseline_choice,
            sample=sample,
            timeout=timeout,
            allow_dataset_change=allow_dataset_change,
        )
    )
    if isinstance(result, GateReport):
        return result
    assert isinstance(result, RemoteFailure)
    return result.exit_code, result.message, result.run


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(EXIT_USAGE, f"cannot write {path}: {exc.strerror or exc}")


__all__ = ["gate"]
