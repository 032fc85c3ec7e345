"""``monitor canary``: watch a live candidate against production and promote or roll back.

``monitor canary`` exit codes (see docs/ci.md, "Canary"):
    0  promote: not shown worse within ``--duration`` (or, early, shown not worse than
       ``--margin``)
    1  roll back: the candidate's accuracy is worse, with always-valid p <= ``--alpha``
    2  usage or configuration error (bad flags, the token refused, a stream without an
       accuracy; with ``--promote-alias``: a bad alias, a model without a registry)
    3  infrastructure error (the daemon unreachable, a stream missing, no labelled record
       of a model during the watch; with ``--promote-alias``: the store or the registry
       unreachable, or the candidate's registry alias moved during the watch)
With ``--suite``, a regressed verdict of the candidate's runs in that suite rolls back at
once. With ``--promote-alias``, a canary that exits 0 also promotes the candidate's
version (resolved from its registry alias at the start) to that alias, tagged with the
canary's evidence (``monitor.cli.promotion``); a roll-back never touches the registry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.common import CONFIG_HELP, EXIT_USAGE, duration_option, fail, load, write_report

if TYPE_CHECKING:
    from monitor.config import AnyModelConfig, Config
    from monitor.gate.canary import CanaryReport

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
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help=CONFIG_HELP + " Needed for --model.",
)
@click.option(
    "--model",
    "model_name",
    default=None,
    help="The candidate's model (its [[models]] entry): its version from its registry alias.",
)
@click.option(
    "--suite",
    default=None,
    help="Also roll back on a regressed verdict of this suite on --model during the watch.",
)
@click.option(
    "--promote-alias",
    "promote_alias",
    default=None,
    metavar="ALIAS",
    help="On a promotion, point this alias of --model's registry at the candidate's version,"
    " tagged with the canary's evidence.",
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
    config_path: Path | None,
    model_name: str | None,
    suite: str | None,
    promote_alias: str | None,
    report_md: Path | None,
    report_json: Path | None,
    junit: Path | None,
) -> None:
    """Watch the candidate's stream against production's on the daemon for --duration and
    exit 0 (promote), 1 (roll back), 2 (usage error) or 3 (infrastructure error); it stops
    early when the sequential test is decisive, or when a --suite verdict regressed. With
    --promote-alias, a promotion moves that alias of --model's registry to the candidate."""
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
    config, model, version = _candidate(config_path, model_name, suite, promote_alias)
    settings = CanarySettings(
        production,
        candidate,
        span.total_seconds(),
        every.total_seconds(),
        alpha=alpha,
        tau=tau,
        margin=margin,
        model=model_name,
        model_version=version,
        suite=suite,
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
        if promote_alias is not None and result.exit_code == 0:
            assert config is not None and model is not None
            _promote(config, model, result, promote_alias)
        sys.exit(result.exit_code)
    if result.exit_code == EXIT_INFRASTRUCTURE:
        write_report(
            report_md, render_canary_failure_markdown(production, candidate, result.message)
        )
    fail(result.exit_code, result.message)


def _candidate(
    config_path: Path | None,
    model_name: str | None,
    suite: str | None,
    promote_alias: str | None,
) -> tuple[Config | None, AnyModelConfig | None, str | None]:
    """The configuration, the candidate's model and its version now, checked before the
    watch: exit 2 on a flag without the flags it needs, 3 when the store (promoting) or
    the registry cannot answer."""
    from monitor.cli.promotion import check_promotable, check_store, registry_version

    if promote_alias is not None and (model_name is None or config_path is None):
        fail(EXIT_USAGE, "--promote-alias needs --model and -c CONFIG (the model's registry)")
    if suite is not None and model_name is None:
        fail(EXIT_USAGE, "--suite needs --model: the verdicts read are the suite's on that model")
    if model_name is None:
        return None, None, None
    if config_path is None:
        fail(EXIT_USAGE, "--model needs -c CONFIG: the model is a [[models]] entry of it")
    config = load(config_path)
    if promote_alias is not None:
        model = check_promotable(config, model_name, promote_alias)
        check_store(config)
    else:
        found = next((m for m in config.models if m.name == model_name), None)
        if found is None:
            fail(EXIT_USAGE, f"no model {model_name!r} in the configuration")
        model = found
    if suite is not None:
        _check_suite(config, suite, model_name)
    if model.registry is None:
        return config, model, None
    version = registry_version(model, f"cannot resolve the version of model {model_name!r}")
    click.echo(
        f"monitor: canary of model {model_name!r} version {version} (alias"
        f" {model.registry.alias!r} of registered model {model.registry.name!r})",
        err=True,
    )
    return config, model, version


def _check_suite(config: Config, suite_name: str, model_name: str) -> None:
    """Exit 2 unless ``suite_name`` is a suite of the configuration that evaluates
    ``model_name``: a misspelled one would read no verdicts and never roll back."""
    suite = next((s for s in config.suites if s.name == suite_name), None)
    if suite is None:
        known = ", ".join(s.name for s in config.suites) or "none"
        fail(
            EXIT_USAGE, f"--suite: no suite {suite_name!r} in the configuration (defined: {known})"
        )
    if model_name not in suite.models:
        fail(
            EXIT_USAGE,
            f"--suite: suite {suite_name!r} does not evaluate model {model_name!r}"
            f" (its models: {', '.join(suite.models)})",
        )


def _promote(config: Config, model: AnyModelConfig, report: CanaryReport, alias: str) -> None:
    """Promote the candidate's version to ``alias`` on the canary's evidence, unless its
    registry alias moved during the watch (exit 3 when it did, or when the promotion
    fails)."""
    from monitor.cli.promotion import promote_version
    from monitor.registry.promotion import canary_evidence

    assert report.model_version is not None
    evidence = canary_evidence(report)
    promote_version(
        config, model, report.model_version, alias, evidence, command="canary", unmoved=True
    )


__all__ = ["canary"]
