"""``monitor gate``: run a suite against a model in CI and judge it against its baseline.

``monitor gate`` exit codes (see docs/ci.md):
    0  pass, improved or inconclusive (the report says how many cases would tell); or,
       when the suite holds the verdict for review, approved
    1  regressed; or, when held for review, rejected
    2  usage or configuration error (unknown suite or model, no baseline, the dataset
       changed since the baseline, a token without the scope)
    3  infrastructure error (the endpoint unreachable, the error budget exceeded, the
       store or the remote daemon unreachable)
    4  the verdict waits for review (no ``--wait-review``, or nobody decided in time)
A regression and a broken endpoint are never confused: a run that failed never gets a
verdict. With ``--promote-alias``, a gate that exits 0 also promotes the evaluated model
version in the model's registry (``monitor.registry.promotion``); a registry that refuses
or cannot be reached makes it exit 3, after the reports are written.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import (
    EXIT_STARTUP,
    EXIT_USAGE,
    config_option,
    duration_option,
    fail,
    load,
    ready_store,
    write_report,
)
from monitor.cli.progress import Advance, case_progress, progress_option, wanted
from monitor.cli.promotion import check_promotable, promote_version
from monitor.clock import utc_now
from monitor.daemon.heap import freeze_startup_objects, preload
from monitor.records import Run, RunStatus

# The gate, the runner and the verdicts are imported by the commands that use them: the
# CLI must start at once for --help and check-config.
EXIT_INFRASTRUCTURE = EXIT_STARTUP  # the gate's 3: the endpoint, store or daemon failed

# Polling a verdict that waits for review: a short first pause, growing to this.
_REVIEW_POLL_FIRST, _REVIEW_POLL_MAX = 0.5, 5.0

if TYPE_CHECKING:
    from monitor.config import AnyModelConfig, Config, SuiteConfig
    from monitor.gate import GateReport
    from monitor.runs.runner import Runner
    from monitor.store.parts import HasVerdicts


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
@click.option(
    "--tier",
    default=None,
    help="Run the suite's tier of this name ([suites.tiers]), judged against its baseline.",
)
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
@progress_option
@click.option(
    "--wait-review",
    "wait_review",
    default=None,
    metavar="DURATION",
    help="When the verdict waits for review, wait this long (e.g. '30m') for a decision.",
)
@click.option(
    "--promote-alias",
    "promote_alias",
    default=None,
    metavar="ALIAS",
    help="On a passing gate, point this alias of the model's registry at the evaluated"
    " version, tagged with the verdict.",
)
def gate(
    config_path: Path,
    suite_name: str,
    model_name: str,
    baseline_choice: str | None,
    sample: int | None,
    tier: str | None,
    report_md: Path | None,
    report_json: Path | None,
    junit: Path | None,
    remote: str | None,
    allow_dataset_change: bool,
    timeout: float,
    show_progress: bool | None,
    wait_review: str | None,
    promote_alias: str | None,
) -> None:
    """Run a suite against a model, judge it against its baseline, and exit 0 (pass or
    approved), 1 (regressed or rejected), 2 (usage or config error), 3 (infrastructure
    error) or 4 (the verdict still waits for review)."""
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
    review_wait: timedelta | None = duration_option("--wait-review", wait_review)
    if tier is not None and sample is not None:
        fail(EXIT_USAGE, "give either --sample or --tier: a tier sets the sample")
    config: Config | None = None
    if promote_alias is not None:
        if remote is not None:
            fail(EXIT_USAGE, "--promote-alias needs a local run: it cannot go with --remote")
        config = load(config_path)
        check_promotable(config, model_name, promote_alias)
    if remote is not None:
        # The daemon runs with its own configuration: the file (and the secrets it names)
        # need not be readable here.
        outcome = _remote(
            remote,
            suite_name,
            model_name,
            baseline_choice,
            sample,
            tier,
            timeout,
            allow_dataset_change,
            review_wait,
            show_progress=wanted(show_progress),
        )
    else:
        outcome = _local(
            config or load(config_path),
            suite_name,
            model_name,
            baseline_choice,
            sample,
            tier,
            allow_dataset_change,
            review_wait,
            show_progress=wanted(show_progress),
        )
    if isinstance(outcome, GateReport):
        write_report(report_md, render_markdown(outcome))
        write_report(report_json, render_json(outcome))
        write_report(junit, render_junit(outcome))
        click.echo(outcome.summary)
        if promote_alias is not None and outcome.exit_code == 0:
            assert config is not None
            _promote(config, model_name, outcome, promote_alias)
        sys.exit(outcome.exit_code)
    code, message, run = outcome
    if code == EXIT_INFRASTRUCTURE:
        write_report(report_md, render_failure_markdown(suite_name, model_name, run, message))
    fail(code, message)


def _promote(config: Config, model_name: str, report: GateReport, alias: str) -> None:
    """Promote the report's model version to ``alias`` on its verdict (exit 3 when it
    cannot)."""
    from monitor.registry.promotion import gate_evidence

    version = report.run.model_version
    if version is None:
        fail(EXIT_INFRASTRUCTURE, f"run {report.run.id} has no model version to promote")
    evidence = gate_evidence(report)
    promote_version(config, config.model(model_name), version, alias, evidence, command="gate")


def _local(
    config: Config,
    suite_name: str,
    model_name: str,
    baseline_choice: str | None,
    sample: int | None,
    tier: str | None,
    allow_dataset_change: bool,
    review_wait: timedelta | None,
    *,
    show_progress: bool,
) -> Any:
    from monitor.gate import GateReport
    from monitor.runs.runner import Runner
    from monitor.verdicts.service import VerdictError, find_baseline, judge_run
    from monitor.wire.runs import RunOut

    suite, model = _configured(config, suite_name, model_name, sample, tier)
    store = ready_store(config)
    try:
        # Know the baseline before spending a run on it.
        try:
            reference = find_baseline(
                store, config, suite.name, model.name, baseline_choice, tier or ""
            )
        except VerdictError as exc:
            return EXIT_USAGE, str(exc), None
        preload()
        freeze_startup_objects()
        import asyncio

        runner = Runner(store, durability=config.store, models=config.models)
        with case_progress(f"gate {suite.name} x {model.name}", show_progress) as advance:
            run = asyncio.run(_run_once(runner, suite, model, tier or "", advance))
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
        report = GateReport.build(verdict, run, reference.run)
        if review_wait is not None and report.awaiting_review:
            report = _await_review(store, report, review_wait)
        return report
    finally:
        store.close()


def _await_review(store: HasVerdicts, report: GateReport, wait: timedelta) -> GateReport:
    """The report once its verdict is approved or rejected, or as it is after ``wait``."""
    from monitor.wire.verdicts import VerdictOut

    verdict_id = report.verdict.id
    click.echo(_waiting_line(report, wait), err=True)
    deadline, pause = time.monotonic() + wait.total_seconds(), _REVIEW_POLL_FIRST
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _REVIEW_POLL_MAX)
        now = store.verdicts.get_verdict(verdict_id)
        if now is None:  # judged again meanwhile (a rare replacement): keep waiting on it
            found = store.verdicts.list_verdicts(
                run_id=report.run.id, baseline_run_id=report.baseline.id, limit=1
            )
            now = found[0] if found else None
            if now is None:
                break
            verdict_id = now.id
        current = VerdictOut.of(now)
        if current.review != "needs_review":
            return report.assemble(current, report.run, report.baseline)
    return report


def _waiting_line(report: GateReport, wait: timedelta | None) -> str:
    from monitor.durations import format_duration

    v, wait = report.verdict, wait or timedelta(0)
    return (
        f"monitor: verdict {v.id} of run {v.run_id} ({v.outcome}) waits for review; waiting up"
        f" to {format_duration(wait)} for `monitor review approve|reject {v.run_id}` or"
        f" POST /v1/verdicts/{v.id}/review"
    )


def _configured(
    config: Config, suite_name: str, model_name: str, sample: int | None, tier: str | None
) -> tuple[SuiteConfig, AnyModelConfig]:
    """The named suite (with ``--sample`` or ``--tier`` applied) and model; exit 2 when
    unknown."""
    suite = next((s for s in config.suites if s.name == suite_name), None)
    model = next((m for m in config.models if m.name == model_name), None)
    if suite is None:
        fail(EXIT_USAGE, f"no suite {suite_name!r} in the configuration")
    if model is None:
        fail(EXIT_USAGE, f"no model {model_name!r} in the configuration")
    if sample is not None:
        suite = suite.model_copy(update={"sample": sample})
    if tier is not None:
        try:
            suite = suite.for_tier(tier)
        except KeyError as exc:
            fail(EXIT_USAGE, str(exc.args[0]))
    return suite, model


async def _run_once(
    runner: Runner, suite: SuiteConfig, model: AnyModelConfig, tier: str, progress: Advance | None
) -> Run:
    try:
        return await runner.run(suite, model, trigger="gate", tier=tier, progress=progress)
    finally:
        await runner.aclose()


def _remote(
    url: str,
    suite: str,
    model: str,
    baseline_choice: str | None,
    sample: int | None,
    tier: str | None,
    timeout: float,
    allow_dataset_change: bool,
    review_wait: timedelta | None,
    *,
    show_progress: bool,
) -> Any:
    from monitor.gate import TOKEN_ENV, GateReport, RemoteFailure, remote_report

    token = os.environ.get(TOKEN_ENV)
    if not token:
        fail(EXIT_USAGE, f"--remote needs a token with the write scope in ${TOKEN_ENV}")
    import asyncio

    # The daemon reports the run's scored and planned cases at each poll.
    with case_progress(f"gate {suite} x {model} on {url}", show_progress) as advance:
        result = asyncio.run(
            remote_report(
                url,
                token,
                suite,
                model,
                baseline=baseline_choice,
                sample=sample,
                tier=tier,
                timeout=timeout,
                allow_dataset_change=allow_dataset_change,
                review_wait=None if review_wait is None else review_wait.total_seconds(),
                announce=lambda report: click.echo(_waiting_line(report, review_wait), err=True),
                progress=advance,
            )
        )
    if isinstance(result, GateReport):
        return result
    assert isinstance(result, RemoteFailure)
    return result.exit_code, result.message, result.run


__all__ = ["gate"]
